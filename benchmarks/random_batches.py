"""Training batches of random content with a config's shapes, for timing."""

import numpy as np

from data_pipelines import input_pipeline


def caption_lengths(batch_size, rng):
  """VATEX-like caption lengths: 2-23 words, median 8 (batch_size,) int."""
  lengths = np.round(np.exp(rng.normal(np.log(8), 0.35, batch_size)))
  return np.clip(lengths, 2, 23).astype(np.int32)


def random_batch(config, batch_size, max_words, feature_dim, vocab_size,
                 seed=0, extra_features=None):
  """A training batch of random content with the config's shapes.

  Captions of `caption_lengths`; each verb and noun node covers one or two
  words of its caption, the first verb and first two nouns always present.
  `extra_features` (a model's `extra_train_features()`) adds its fields,
  random (booleans: half true).
  """
  rng = np.random.default_rng(seed)
  lengths = caption_lengths(batch_size, rng)
  words = np.arange(max_words)
  token_ids = np.where(words < lengths[:, None],
                       rng.integers(1, vocab_size, (batch_size, max_words)),
                       0).astype(np.int32)

  def phrase_masks(count, present):
    starts = rng.integers(0, lengths[:, None] - 1, (batch_size, count))
    ends = starts + rng.integers(1, 3, (batch_size, count))
    masks = (words >= starts[..., None]) & (words < ends[..., None])
    masks &= words < lengths[:, None, None]
    masks[:, present:] &= rng.random((batch_size, count - present, 1)) < 0.5
    return masks

  verbs, nouns = config.num_verbs, config.num_nouns
  nodes = 1 + verbs + nouns
  frames = config.max_frames
  batch = {
      'frames': rng.normal(size=(batch_size, frames, feature_dim)).astype(
          np.float32),
      'frame_mask': np.ones((batch_size, frames), bool),
      'video_key': np.arange(batch_size, dtype=np.int32),
      'token_ids': token_ids,
      'length': lengths,
      'verb_masks': phrase_masks(verbs, 1),
      'noun_masks': phrase_masks(nouns, 2),
      'node_roles': rng.integers(0, 16, (batch_size, verbs + nouns)).astype(
          np.int32),
      'adjacency': (rng.random((batch_size, nodes, nodes)) < 0.3).astype(
          np.float32),
  }
  for field, (shape, dtype) in input_pipeline.extra_field_shapes(
      extra_features or {}, (frames, feature_dim)).items():
    values = rng.normal(size=(batch_size, *shape))
    batch[field] = (values > 0 if dtype == np.bool_ else values).astype(dtype)
  return batch
