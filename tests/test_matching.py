"""Phrase-to-frame matching: NumPy loop, reference and fast paths agree."""

import jax.numpy as jnp
import numpy as np
import pytest

from hgr_jax.models import matching


def _numpy_phrase_scores(frames, frame_mask, phrases, phrase_mask, sigma):
  """The official algorithm written as plain loops over videos and captions."""
  def unit(v):
    return v / max(np.linalg.norm(v), 1e-10)
  out = np.zeros((frames.shape[0], phrases.shape[0]))
  for v in range(frames.shape[0]):
    valid_frames = frames[v][frame_mask[v]]
    for c in range(phrases.shape[0]):
      scores = []
      for p in np.flatnonzero(phrase_mask[c]):
        phrase = unit(phrases[c, p])
        cos = np.array([unit(f) @ phrase for f in valid_frames])
        attention = np.maximum(cos, 0)
        attention = attention / max(np.linalg.norm(attention), 1e-10)
        weights = np.exp(sigma * attention)
        weights /= weights.sum()
        scores.append(unit(weights @ valid_frames) @ phrase)
      out[v, c] = np.mean(scores) if scores else 0.0
  return out


def _random_inputs(seed, videos=4, captions=5, frames=7, phrases=3, dim=16):
  rng = np.random.default_rng(seed)
  frame_mask = np.arange(frames)[None] < rng.integers(1, frames + 1, videos)[:, None]
  phrase_mask = np.arange(phrases)[None] < rng.integers(0, phrases + 1, captions)[:, None]
  return (rng.normal(size=(videos, frames, dim)).astype(np.float32), frame_mask,
          rng.normal(size=(captions, phrases, dim)).astype(np.float32),
          phrase_mask)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_reference_matches_numpy_loop(seed):
  inputs = _random_inputs(seed)
  expected = _numpy_phrase_scores(*inputs, sigma=4.0)
  got = matching.phrase_frame_scores_reference(*map(jnp.asarray, inputs),
                                               sigma=4.0)
  np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_gram_path_matches_reference(seed):
  inputs = _random_inputs(seed, videos=6, captions=9, frames=20, phrases=6,
                          dim=64)
  fast = matching.phrase_frame_scores(*map(jnp.asarray, inputs), sigma=4.0)
  reference = matching.phrase_frame_scores_reference(*map(jnp.asarray, inputs),
                                                     sigma=4.0)
  np.testing.assert_allclose(fast, reference, atol=2e-6)


def test_padding_has_no_effect():
  frames, frame_mask, phrases, phrase_mask = _random_inputs(4)
  rng = np.random.default_rng(5)
  noisy_frames = np.where(frame_mask[..., None], frames,
                          rng.normal(size=frames.shape) * 50).astype(np.float32)
  noisy_phrases = np.where(phrase_mask[..., None], phrases,
                           rng.normal(size=phrases.shape) * 50).astype(np.float32)
  for fn in (matching.phrase_frame_scores,
             matching.phrase_frame_scores_reference):
    np.testing.assert_allclose(
        fn(frames, frame_mask, phrases, phrase_mask, 4.0),
        fn(noisy_frames, frame_mask, noisy_phrases, phrase_mask, 4.0),
        atol=1e-6)


def test_caption_without_phrases_scores_zero():
  frames, frame_mask, phrases, phrase_mask = _random_inputs(6)
  phrase_mask[2] = False
  scores = matching.phrase_frame_scores(frames, frame_mask, phrases,
                                        phrase_mask, 4.0)
  np.testing.assert_array_equal(np.asarray(scores)[:, 2], 0.0)


def test_cosine_matrix():
  a = np.array([[3.0, 4.0], [1.0, 0.0]], np.float32)
  b = np.array([[0.0, 2.0], [-1.0, 0.0], [1.0, 1.0]], np.float32)
  expected = [[0.8, -0.6, 0.7 * np.sqrt(2)], [0.0, -1.0, 1 / np.sqrt(2)]]
  np.testing.assert_allclose(matching.cosine_matrix(a, b), expected, rtol=1e-6)


def test_bfloat16_products_stay_close():
  frames, frame_mask, phrases, phrase_mask = _random_inputs(
      7, videos=5, captions=6, frames=12, phrases=4, dim=256)
  exact = matching.phrase_frame_scores(frames, frame_mask, phrases,
                                       phrase_mask, 4.0)
  low = matching.phrase_frame_scores(frames, frame_mask, phrases, phrase_mask,
                                     4.0, matmul_dtype=jnp.bfloat16)
  assert low.dtype == jnp.float32
  # bfloat16 keeps 8 significant bits: cosines move by about 2^-9.
  np.testing.assert_allclose(low, exact, atol=1e-2)
  assert not np.allclose(low, exact, atol=1e-6)
  a = np.random.default_rng(0).normal(size=(3, 256)).astype(np.float32)
  np.testing.assert_allclose(
      matching.cosine_matrix(a, a, matmul_dtype=jnp.bfloat16),
      matching.cosine_matrix(a, a), atol=1e-2)


def test_jaccard_matrix_matches_min_over_max():
  rng = np.random.default_rng(3)
  videos = rng.uniform(size=(4, 9)).astype(np.float32)
  captions = rng.uniform(size=(6, 9)).astype(np.float32)
  captions[0] = videos[1]  # Identical concepts score 1.
  expected = np.array([[np.minimum(v, c).sum() / np.maximum(v, c).sum()
                        for c in captions] for v in videos])
  scores = matching.jaccard_matrix(videos, captions)
  np.testing.assert_allclose(scores, expected, rtol=1e-5)
  np.testing.assert_allclose(scores[1, 0], 1.0, rtol=1e-6)
  # Disjoint supports score 0.
  np.testing.assert_allclose(matching.jaccard_matrix(
      np.array([[1.0, 0.0]]), np.array([[0.0, 0.5]])), [[0.0]], atol=1e-7)
