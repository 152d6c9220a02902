"""Streaming top-k equals ranking the full score matrix."""

import jax.numpy as jnp
import numpy as np
import pytest

from hgr_jax import retrieval
from hgr_jax.models import matching


def _chunks(tree, size):
  rows = len(next(iter(tree.values())))
  for start in range(0, rows, size):
    yield {k: v[start:start + size] for k, v in tree.items()}


@pytest.mark.parametrize('num_videos,chunk_size,k', [(50, 16, 5), (7, 4, 10)])
def test_matches_full_matrix_argsort(num_videos, chunk_size, k):
  rng = np.random.default_rng(num_videos)
  videos = {'actions': rng.normal(size=(num_videos, 6, 8)).astype(np.float32),
            'frame_mask': np.arange(6)[None] < rng.integers(
                1, 7, (num_videos, 1))}
  queries = {'verbs': rng.normal(size=(9, 3, 8)).astype(np.float32),
             'verb_mask': np.arange(3)[None] < rng.integers(1, 4, (9, 1))}

  def score(v, q):
    return matching.phrase_frame_scores(v['actions'], v['frame_mask'],
                                        q['verbs'], q['verb_mask'], 4.0)

  result = retrieval.streaming_top_k(
      score, queries, _chunks(videos, chunk_size), k, chunk_size)
  full = np.asarray(score(videos, queries)).T  # (queries, videos)
  kept = min(k, num_videos)
  expected = np.argsort(-full, axis=1, kind='stable')[:, :kept]
  np.testing.assert_array_equal(result.indices[:, :kept], expected)
  np.testing.assert_allclose(result.scores[:, :kept],
                             np.take_along_axis(full, expected, 1), rtol=1e-6)
  # Fewer videos than k: the tail is empty.
  assert np.all(result.indices[:, kept:] == -1)
  assert np.all(np.isneginf(result.scores[:, kept:]))


def test_ties_keep_stream_order():
  scores = jnp.zeros((1, 3), jnp.float32)
  indices = jnp.array([[4, 5, 6]], jnp.int32)
  merged_scores, merged = retrieval.merge_top_k(
      scores, indices, jnp.array([[0.0], [1.0], [0.0]]), 10, 3, 3)
  np.testing.assert_array_equal(merged, [[11, 4, 5]])
  np.testing.assert_array_equal(merged_scores, [[1.0, 0.0, 0.0]])


def test_chunk_larger_than_chunk_size_is_an_error():
  with pytest.raises(ValueError, match='chunk_size'):
    retrieval.streaming_top_k(lambda v, q: v @ q.T, np.ones((2, 3)),
                              [np.ones((5, 3))], 1, 4)
