"""HANet's concept pooling against NumPy loops written like the official."""

import math

import numpy as np

from hgr_jax.models import concept_pooling


def _numpy_topk_mean(probs, lengths):
  out = np.zeros((len(probs), probs.shape[-1]))
  for b, n in enumerate(lengths):
    k = math.ceil(n / 8)
    for c in range(probs.shape[-1]):
      out[b, c] = np.mean(np.sort(probs[b, :n, c])[::-1][:k])
  return out


def _numpy_action_clips(frame_probs, concepts, lengths, features):
  """The official loop: windows of 5 unless one crosses an edge."""
  clips = []
  for b, n in enumerate(lengths):
    best = np.array([np.argmax(frame_probs[b, :n, c]) for c in concepts[b]])
    if best.max() + 2 < n and best.min() > 1:
      clips.append(np.mean([features[b, best + d] for d in range(-2, 3)], 0))
    else:
      clips.append(features[b, best])
  return np.stack(clips)


def _numpy_entity_clips(frame_probs, concepts, lengths, features):
  clips = []
  for b, n in enumerate(lengths):
    rows = []
    for c in concepts[b]:
      order = np.argsort(-frame_probs[b, :n, c], kind='stable')
      rows.append(features[b, order[:3]].mean(0) if n > 2
                  else features[b, order[0]])
    clips.append(rows)
  return np.array(clips)


def test_topk_mean_pool_matches_numpy():
  rng = np.random.default_rng(0)
  lengths = np.array([1, 7, 8, 9, 17, 20])
  probs = rng.uniform(size=(6, 20, 5)).astype(np.float32)
  mask = np.arange(20)[None] < lengths[:, None]
  # Padding holds large values that must never be picked.
  probs = np.where(mask[..., None], probs, 1.0).astype(np.float32)
  pooled = concept_pooling.topk_mean_pool(probs, mask)
  np.testing.assert_allclose(pooled, _numpy_topk_mean(probs, lengths),
                             rtol=1e-6)
  # A row without valid positions pools to zeros instead of NaN.
  empty = concept_pooling.topk_mean_pool(probs[:1], np.zeros((1, 20), bool))
  np.testing.assert_array_equal(empty, 0.0)


def _clip_case(lengths, best_frames, num_frames=12):
  """Frame probabilities whose argmax for concept c of video b is given."""
  rng = np.random.default_rng(1)
  probs = rng.uniform(0.0, 0.5, (len(lengths), num_frames, 6))
  concepts = np.array([[4, 1, 3]] * len(lengths))
  for b, frames in enumerate(best_frames):
    for c, f in zip(concepts[b], frames):
      probs[b, f, c] = 0.9 + 0.01 * c
  features = rng.normal(size=(len(lengths), num_frames, 5))
  return probs.astype(np.float32), concepts, features.astype(np.float32)


def test_action_windows_at_video_edges():
  lengths = np.array([10, 10, 10, 10, 10, 4])
  # Interior; touching frame 1; touching the last valid frame minus 2 (ok);
  # at the last valid frame; at frame 0; too short a video for any window.
  best = [[5, 3, 6], [5, 1, 6], [2, 7, 4], [5, 9, 4], [0, 5, 5], [2, 1, 3]]
  probs, concepts, features = _clip_case(lengths, best)
  mask = np.arange(12)[None] < lengths[:, None]
  weights = concept_pooling.action_clip_weights(probs, concepts, mask)
  clips = np.einsum('bcf,bfd->bcd', weights, features)
  expected = _numpy_action_clips(probs, concepts, lengths, features)
  np.testing.assert_allclose(clips, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.sum(weights, -1), 1.0, rtol=1e-6)
  # Videos 0 and 2 average windows; 1, 3, 4, 5 take single frames.
  assert [bool(np.all(np.sum(np.asarray(weights[b]) > 0, -1) == 5))
          for b in range(6)] == [True, False, True, False, False, False]
  # Padded frames are never chosen even where their probabilities are high.
  probs[:, 10:] = 1.0
  again = concept_pooling.action_clip_weights(probs, concepts, mask)
  np.testing.assert_array_equal(again, weights)


def test_entity_clips_average_the_top_three_frames():
  lengths = np.array([12, 5, 3, 2, 1])
  rng = np.random.default_rng(2)
  probs = rng.uniform(size=(5, 12, 6)).astype(np.float32)
  probs[:, 5:][np.arange(12)[None, 5:] >= lengths[:, None]] = 2.0
  features = rng.normal(size=(5, 12, 4)).astype(np.float32)
  concepts = np.array([[0, 5], [2, 3], [1, 4], [0, 1], [3, 2]])
  mask = np.arange(12)[None] < lengths[:, None]
  weights = concept_pooling.entity_clip_weights(probs, concepts, mask)
  clips = np.einsum('bcf,bfd->bcd', weights, features)
  np.testing.assert_allclose(
      clips, _numpy_entity_clips(probs, concepts, lengths, features),
      rtol=1e-5, atol=1e-6)
