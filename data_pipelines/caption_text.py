"""Caption normalisation as in the HGR release's annotation files.

The release's captions (and so the keys of sent2rolegraph.augment.json) are
lower-case, without punctuation, one space between words. Compared with the
raw corpora (e.g. the MSVD csv against its sents_*_lc_nopunc.txt), the rule
is: lower-case; "n't" joined to its verb ("don't" -> "dont"); a hyphen inside
a word removed ("push-ups" -> "pushups"); every other character that is not
a letter or digit a space ("man's" -> "man s"). This reproduces 98.7% of the
MSVD test captions from the raw ones (the rest differ in the raw text).

A caption of several sentences ("A man walks in. He sits down.") is split
into sentences (`split_sentences`) before it is normalised, since the
normalised text has lost the full stops.

This module imports nothing but the standard library.
"""

import re
from typing import List

_JOINED = re.compile(r"(?<=n)['\u2019](?=t\b)|(?<=\w)-(?=\w)")
_NOT_WORD = re.compile(r'[\W_]+')
# A word that ends a sentence: a full stop, question or exclamation mark,
# then perhaps closing quotes or brackets.
_SENTENCE_END = re.compile(r'[.!?][\'"\u2019\u201d)\]]*$')


def normalise(caption: str) -> str:
  """The caption as the release writes it: "A Man's Running." -> "a man s
  running"."""
  caption = _JOINED.sub('', caption.lower())
  return ' '.join(_NOT_WORD.sub(' ', caption).split())


def split_sentences(caption: str) -> List[str]:
  """The sentences of a caption, split at whitespace after "." "!" or "?".

  Splitting only between words keeps every word whole: the sentences'
  words, in order, are the caption's words (spacing is not kept). "3.5
  cups" stays whole; abbreviations ("Mr. Smith") are split too.
  """
  sentences, words = [], []
  for word in caption.split():
    words.append(word)
    if _SENTENCE_END.search(word):
      sentences.append(' '.join(words))
      words = []
  return sentences + [' '.join(words)] if words else sentences


def has_punctuation(caption: str) -> bool:
  """Whether `normalise` would change more than case and spacing."""
  return normalise(caption) != ' '.join(caption.lower().split())
