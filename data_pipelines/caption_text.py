"""Caption normalisation as in the HGR release's annotation files.

The release's captions (and so the keys of sent2rolegraph.augment.json) are
lower-case, without punctuation, one space between words. Compared with the
raw corpora (e.g. the MSVD csv against its sents_*_lc_nopunc.txt), the rule
is: lower-case; "n't" joined to its verb ("don't" -> "dont"); a hyphen inside
a word removed ("push-ups" -> "pushups"); every other character that is not
a letter or digit a space ("man's" -> "man s"). This reproduces 98.7% of the
MSVD test captions from the raw ones (the rest differ in the raw text).

This module imports nothing but the standard library.
"""

import re

_JOINED = re.compile(r"(?<=n)['\u2019](?=t\b)|(?<=\w)-(?=\w)")
_NOT_WORD = re.compile(r'[\W_]+')


def normalise(caption: str) -> str:
  """The caption as the release writes it: "A Man's Running." -> "a man s
  running"."""
  caption = _JOINED.sub('', caption.lower())
  return ' '.join(_NOT_WORD.sub(' ', caption).split())
