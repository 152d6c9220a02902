"""Verbs that spaCy's small model tagged as nouns or adjectives.

The small English model often reads a verb form as a noun where captions
drop the auxiliary or the subject ("a guy diving into the pool", "season
the steak with pepper", "a man skis and falls"). `misparsed_verbs` finds
them by form (lemminflect's lexicon) and position; the caption parser then
parses such a sentence again with a stand-in verb of the same form in their
place (`stand_in_words`), since spaCy's parser does not read the tags.

Needs lemminflect (the `parse` extra), imported when first used.
"""

import functools
from typing import Dict, List, Optional

from data_pipelines import caption_lexicon as lexicon


def is_content_verb(token) -> bool:
  """A content verb: not an auxiliary, copula or adjectival participle."""
  return token.pos_ == 'VERB' and token.dep_ not in ('aux', 'auxpass', 'amod')


def _lemminflect():
  # Imported when first needed: it imports spaCy too, if installed.
  import lemminflect  # pylint: disable=g-import-not-at-top
  return lemminflect


@functools.lru_cache(maxsize=65536)
def verb_lemma(word: str) -> str:
  """The verb lemma of a word form ("pours" -> "pour"), or the word."""
  lemmas = _lemminflect().getAllLemmas(word, 'VERB').get('VERB')
  return lemmas[0] if lemmas else word


# A misparsed verb is parsed again with this verb in its place ("a guy
# diving into the pool" as "a guy playing into the pool"): common,
# transitive and intransitive. A word the model still reads as a noun stays
# one ("a fork and his fingers"; a stand-in that is always a verb, such as
# "go", would make those verbs too).
_STAND_IN_VERB = 'play'
_VERB_FORM_TAGS = ('VBG', 'VBZ', 'VBD', 'VBN', 'VB')
_VERBAL_DEPS = frozenset(('ROOT', 'acl', 'advcl', 'relcl', 'ccomp', 'xcomp',
                          'pcomp', 'conj', 'acomp'))
_BE_FORMS = frozenset(('is', 'are', 'was', 'were', 'be', 'been', 'am'))


@functools.lru_cache(maxsize=65536)
def verb_form_tag(word: str) -> Optional[str]:
  """The Penn tag of `word` as a known verb form ("dives" -> "VBZ"), or None.

  Only words lemminflect's lexicon lists as verb forms count: a typo or an
  unknown word is never repaired.
  """
  for tag in _VERB_FORM_TAGS:
    if is_verb_form(word, tag):
      return tag
  return None


@functools.lru_cache(maxsize=65536)
def is_verb_form(word: str, tag: str) -> bool:
  """Whether lemminflect lists `word` as the `tag` form of a verb."""
  lemmas = _lemminflect().getAllLemmas(word, 'VERB').get('VERB')
  return bool(lemmas) and word in _lemminflect().getInflection(lemmas[0],
                                                               tag)


def _nominal(token) -> bool:
  return token.pos_ in ('NOUN', 'PROPN', 'PRON')


def misparsed_verbs(doc) -> Dict[int, str]:
  """Verbs the tagger took for nouns or adjectives: index -> verb form tag.

  * an -ing or -s form in a clause position ("a guy diving into the pool",
    "while a puppy chews on his ear"), unless it is a noun coordinated with
    a noun ("moving his hands and fingers");
  * a word coordinated with a verb, in the verb's form ("spin and twirl
    around"), or with the verb's object but followed by an object of its
    own ("slice the bread and toast it"); a sentence's head noun
    coordinated with a verb ("a man skis and falls");
  * a base form right after "is"/"was" and before more words ("a man is
    open the door", "was practice in the gym");
  * in a sentence without any verb, an -s form right after a noun ("a girl
    in a pool stares straight ahead"), or a base form after a plural or
    coordinated noun and before more words ("a man and a zombie sneak
    through a room");
  * an -ing form heading the sentence after a name or noun ("jason derula
    singing in a music video");
  * an imperative: a base form first, before a determiner or pronoun
    ("season the steak with pepper").
  """
  has_verb = any(is_content_verb(t) for t in doc)
  found = {}
  for token in doc:
    if token.pos_ in ('VERB', 'AUX'):
      continue
    word = token.lower_
    tag = verb_form_tag(word)
    if tag is None:
      continue
    if token.i == 0:
      if _is_imperative(token):
        found[token.i] = 'VB'
      continue
    previous = doc[token.i - 1]
    head = token.head
    noun_conjunct = (token.dep_ == 'conj' and _nominal(head) and
                     previous.dep_ in ('cc', 'punct'))
    if (token.dep_ == 'conj' and is_content_verb(head) and
        head.dep_ in _VERBAL_DEPS and
        head.tag_ in _VERB_FORM_TAGS + ('VBP',) and
        is_verb_form(word, head.tag_)):
      found[token.i] = head.tag_
    elif noun_conjunct and _object_follows(token) and head.head.pos_ == (
        'VERB') and is_verb_form(word, head.head.tag_):
      found[token.i] = head.head.tag_
    elif (token.dep_ == 'ROOT' and _nominal(token) and any(
        c.dep_ == 'conj' and c.pos_ == 'VERB' and is_verb_form(word, c.tag_)
        for c in token.children)):
      found[token.i] = next(c.tag_ for c in token.children
                            if c.dep_ == 'conj' and c.pos_ == 'VERB')
    elif (tag in ('VBG', 'VBZ') and token.dep_ in _VERBAL_DEPS and
          not noun_conjunct and (
              token.dep_ != 'ROOT' or any(c.dep_ in ('nsubj', 'dobj')
                                          for c in token.children))):
      found[token.i] = tag
    elif (tag == 'VBG' and token.dep_ == 'ROOT' and not any(
        c.dep_ in ('det', 'poss') for c in token.children) and any(
            c.dep_ == 'compound' and c.i < token.i for c in token.children)):
      found[token.i] = tag
    elif (tag == 'VB' and previous.lower_ in _BE_FORMS and
          token.i + 1 < len(doc) and token.dep_ in ('acomp', 'attr')):
      found[token.i] = tag
    elif (not has_verb and tag == 'VBZ' and
          previous.pos_ in ('NOUN', 'PROPN')):
      found[token.i] = tag
    elif (not has_verb and is_verb_form(word, 'VBP') and
          previous.pos_ in ('NOUN', 'PROPN') and token.i + 1 < len(doc) and
          doc[token.i + 1].pos_ in ('ADP', 'ADV', 'DET', 'PART') and (
              previous.tag_ in ('NNS', 'NNPS') or 'conj' in (
                  token.dep_, previous.dep_))):
      found[token.i] = 'VBP'
    elif (tag == 'VBZ' and token.dep_ == 'nsubj' and
          token.head.tag_ in ('VB', 'VBP') and token.head.i == token.i + 1):
      # "an individual cleans snow off a car": "snow" taken for the verb.
      found[token.i] = tag
    elif _is_last_conjunct_verb(token):
      found[token.i] = head.head.tag_ if head.head.pos_ == 'VERB' else 'VB'
  return found


def _is_imperative(first) -> bool:
  """Whether a sentence's first word, tagged as a noun, is an imperative.

  A base form before a determiner or pronoun ("season the steak"), before a
  preposition its verb numbers ("season with salt":
  `lexicon.NUMBERED_PREPOSITIONS`),
  or parsed as the subject of a base form right after it ("place lettuce
  tomato and bacon on the bun", with "lettuce" the verb).
  """
  doc = first.doc
  if (len(doc) < 2 or first.pos_ not in ('NOUN', 'PROPN', 'ADJ') or
      not is_verb_form(first.lower_, 'VB')):
    return False
  following = doc[1]
  if first.dep_ == 'ROOT':
    return following.tag_ in ('DT', 'PRP$', 'PRP', 'CD', 'PDT') or (
        following.pos_ == 'ADP' and following.lower_ in
        lexicon.NUMBERED_PREPOSITIONS.get(verb_lemma(first.lower_), ()))
  return (first.dep_ in ('nsubj', 'compound') and first.head.i == 1 and
          following.tag_ == 'VB')


def _is_last_conjunct_verb(token) -> bool:
  """A bare base form ending a coordination of objects: the next verb.

  "add the broth wine and herbs and simmer", "add onions and saute until
  soft": a second "and" in the coordination, or a time phrase after it.
  """
  doc = token.doc
  head = token.head
  if (token.dep_ != 'conj' or not _nominal(head) or
      head.dep_ not in ('dobj', 'conj') or
      not is_verb_form(token.lower_, 'VB') or
      any(c.dep_ in ('det', 'amod', 'compound', 'poss', 'nummod')
          for c in token.children) or doc[token.i - 1].lower_ != 'and'):
    return False
  ends = token.i + 1 == len(doc) or doc[token.i + 1].lower_ in (
      'until', 'till', 'for', 'while')
  return ends and (sum(c.dep_ == 'cc' for c in head.children) > 1 or
                   token.i + 1 < len(doc))


def _object_follows(conjunct) -> bool:
  """Whether an object of the verb follows a conjunct of its object
  ("slice the bread and toast it")."""
  verb = conjunct.head.head
  return conjunct.head.dep_ == 'dobj' and any(
      c.dep_ == 'dobj' and c.i == conjunct.right_edge.i + 1
      for c in verb.children)


def stand_in_words(doc, verbs: Dict[int, str]) -> List[str]:
  """The sentence's words with the stand-in verb, in each verb's form."""
  words = [t.text for t in doc]
  for i, tag in verbs.items():
    words[i] = _lemminflect().getInflection(_STAND_IN_VERB, tag)[0]
  return words
