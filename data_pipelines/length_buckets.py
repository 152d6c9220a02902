"""Caption length buckets: each training batch padded only to its bucket.

The BiGRU scans every position of the caption axis, so a batch padded to
max_words (30) when its longest caption has 12 words runs 18 steps for
nothing; the official code packs sequences and runs to the batch's longest
caption. Cutting the axis to the smallest of a few fixed lengths gets most
of that back while the jitted train step compiles once per bucket. Padding
never changes a score (the models mask it), so only the run time changes.
"""

import numpy as np

# Caption fields with a word axis, and that axis.
WORD_AXES = {'token_ids': 1, 'verb_masks': 2, 'noun_masks': 2}


def bucket_lengths(word_buckets, max_words):
  """The sorted caption axes a batch can get: `word_buckets` and max_words.

  Raises:
    ValueError: a bucket outside 1..max_words.
  """
  buckets = sorted(set(word_buckets or ()) | {max_words})
  if buckets[0] < 1 or buckets[-1] > max_words:
    raise ValueError(f'config.word_buckets={tuple(word_buckets)}: every '
                     f'bucket must lie in 1..config.max_words={max_words}.')
  return tuple(buckets)


def bucket_of(longest, buckets):
  """The smallest of the sorted `buckets` holding `longest` words."""
  return buckets[int(np.searchsorted(buckets, longest))]


def trim_to_bucket(batch, buckets):
  """`batch` with its word axes cut to the bucket of its longest caption.

  Args:
    batch: dict of NumPy arrays with length (batch,) and the `WORD_AXES`
      fields padded to buckets[-1] words; other fields pass unchanged.
    buckets: from `bucket_lengths`.

  Returns:
    A dict of the same fields; word axes of `bucket_of(max(length))`.
  """
  return cut_words(batch, bucket_of(int(np.max(batch['length'])), buckets))


def cut_words(batch, words):
  """`batch` with its `WORD_AXES` fields cut to their first `words` words."""
  cut = lambda axis: (slice(None),) * axis + (slice(0, words),)
  return {name: value[cut(WORD_AXES[name])] if name in WORD_AXES else value
          for name, value in batch.items()}
