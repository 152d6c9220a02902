"""Length buckets: batches cut to their bucket train exactly as padded ones."""

import jax
import numpy as np
import pytest

from conftest import tiny_config
from conftest import zero_inputs
from data_pipelines import length_buckets
from hgr_jax import models
from hgr_jax import sharding
from hgr_jax import train


def test_bucket_lengths_add_max_words_and_sort():
  assert length_buckets.bucket_lengths((16, 8), 30) == (8, 16, 30)
  assert length_buckets.bucket_lengths((), 30) == (30,)
  assert length_buckets.bucket_lengths(None, 30) == (30,)
  with pytest.raises(ValueError, match='config.word_buckets'):
    length_buckets.bucket_lengths((8, 40), 30)


def test_bucket_of_is_the_smallest_that_holds():
  buckets = (8, 16, 30)
  assert [length_buckets.bucket_of(n, buckets)
          for n in (1, 8, 9, 16, 17, 30)] == [8, 8, 16, 16, 30, 30]


def test_trim_cuts_only_word_axes():
  batch = {'length': np.array([3, 7]),
           'token_ids': np.arange(2 * 12).reshape(2, 12),
           'verb_masks': np.ones((2, 4, 12), bool),
           'noun_masks': np.ones((2, 6, 12), bool),
           'frames': np.zeros((2, 12, 5))}
  trimmed = length_buckets.trim_to_bucket(batch, (4, 8, 12))
  assert trimmed['token_ids'].shape == (2, 8)
  np.testing.assert_array_equal(trimmed['token_ids'][1], np.arange(12, 20))
  assert trimmed['verb_masks'].shape == (2, 4, 8)
  assert trimmed['noun_masks'].shape == (2, 6, 8)
  assert trimmed['frames'].shape == (2, 12, 5)  # Frames are no word axis.
  np.testing.assert_array_equal(trimmed['length'], [3, 7])


def _short_captions(config, batch_size=6, feature_dim=12, seed=0):
  """A batch of captions of 3-9 words padded to max_words, phrases inside."""
  rng = np.random.default_rng(seed)
  batch = zero_inputs(config, feature_dim, batch_size)
  lengths = rng.integers(3, 10, batch_size)
  words = np.arange(config.max_words)
  batch['frames'] = rng.normal(size=batch['frames'].shape).astype(np.float32)
  batch['length'] = lengths.astype(np.int32)
  batch['token_ids'] = np.where(words < lengths[:, None],
                                rng.integers(3, 50, (batch_size,
                                                     config.max_words)),
                                0).astype(np.int32)
  batch['verb_masks'][:, 0, 1] = True
  batch['noun_masks'][:, 0, 0] = batch['noun_masks'][:, 1, 2] = True
  batch['node_roles'] = rng.integers(
      0, 16, batch['node_roles'].shape).astype(np.int32)
  batch['adjacency'][:, 1:4, 0] = 1.0
  batch['video_key'] = np.arange(batch_size, dtype=np.int32)
  return batch


@pytest.mark.parametrize('name', ['hgr', 'vsepp'])
def test_trimmed_batch_trains_as_the_padded_one(name):
  config = tiny_config(name)
  # Dropout masks are drawn per shape; without dropout the step is exact.
  config.model.update({field: 0.0 for field in (
      'text_dropout', 'video_dropout', 'gcn_dropout') if field in config.model})
  model = models.create_model(config, 50)
  mesh = sharding.data_mesh()
  padded = _short_captions(config)
  buckets = length_buckets.bucket_lengths((12, 20), config.max_words)
  trimmed = length_buckets.trim_to_bucket(padded, buckets)
  assert trimmed['token_ids'].shape[1] == 12
  state = train.create_train_state(model, config, padded, mesh)
  # Gradients, not the stepped parameters: Adam's first step divides each
  # gradient by its own magnitude, which blows rounding up near zero.
  loss_and_grads = jax.jit(lambda batch: train.loss_and_grads(
      state.params, state.batch_stats, batch, state.rng, model))
  (padded_loss, _), padded_grads = loss_and_grads(padded)
  (trimmed_loss, _), trimmed_grads = loss_and_grads(trimmed)
  assert float(padded_loss) > 0
  np.testing.assert_allclose(trimmed_loss, padded_loss, rtol=1e-5)
  scale = max(float(np.abs(g).max()) for g in jax.tree.leaves(padded_grads))
  for a, b in zip(jax.tree.leaves(trimmed_grads),
                  jax.tree.leaves(padded_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)
