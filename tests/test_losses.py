"""Hardest-negative hinge loss against a NumPy loop."""

import numpy as np

from hgr_jax import losses


def _numpy_hinge(scores, video_keys, margin):
  n = len(scores)
  caption_side = video_side = 0.0
  for i in range(n):
    negatives = [j for j in range(n) if video_keys[j] != video_keys[i]]
    caption_side += max([max(0, margin + scores[i, j] - scores[i, i])
                         for j in negatives] + [0])
    video_side += max([max(0, margin + scores[j, i] - scores[i, i])
                       for j in negatives] + [0])
  return (caption_side + video_side) / n


def test_matches_numpy_loop():
  rng = np.random.default_rng(0)
  for keys in ([0, 1, 2, 3, 4, 5], [0, 0, 1, 2, 2, 2]):
    scores = rng.uniform(-1, 1, (6, 6)).astype(np.float32)
    keys = np.array(keys)
    same = keys[:, None] == keys[None, :]
    got = losses.hardest_negative_hinge(scores, same, 0.2)
    np.testing.assert_allclose(got, _numpy_hinge(scores, keys, 0.2), rtol=1e-6)


def test_hand_worked_example():
  scores = np.array([[0.9, 0.8], [0.1, 0.5]], np.float32)
  # Video 0: caption 1 violates by 0.2 + 0.8 - 0.9 = 0.1; video 1: none.
  # Caption 0: video 1 gives 0.2 + 0.1 - 0.9 < 0; caption 1: video 0 gives
  # 0.2 + 0.8 - 0.5 = 0.5. Mean over the batch of 2: (0.1 + 0.5) / 2.
  got = losses.hardest_negative_hinge(scores, np.eye(2, dtype=bool), 0.2)
  np.testing.assert_allclose(got, 0.3, rtol=1e-6)


def test_same_video_captions_are_negatives_unless_masked():
  # Captions 0 and 1 belong to video A (rows 0 and 1 are the same video).
  scores = np.array([[0.9, 0.8, 0.0],
                     [0.8, 0.9, 0.0],
                     [0.0, 0.0, 0.9]], np.float32)
  same = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], bool)
  official, _ = losses.retrieval_loss({'fused': scores}, same, 0.2,
                                      {'fused': 1.0})
  masked, _ = losses.retrieval_loss({'fused': scores}, same, 0.2,
                                    {'fused': 1.0},
                                    mask_same_video_negatives=True)
  # Official: rows/columns 0 and 1 each violate by 0.2 + 0.8 - 0.9 = 0.1 in
  # both directions, (4 x 0.1) / 3; masked: nothing violates.
  np.testing.assert_allclose(official, 0.4 / 3, rtol=1e-6)
  np.testing.assert_allclose(masked, 0.0, atol=1e-7)
  keys = np.array([0, 0, 1])
  np.testing.assert_allclose(masked, _numpy_hinge(scores, keys, 0.2),
                             atol=1e-7)
  np.testing.assert_allclose(official, _numpy_hinge(scores, np.arange(3), 0.2),
                             rtol=1e-6)


def test_weights_select_levels():
  scores = {'fused': np.array([[0.9, 0.8], [0.1, 0.5]], np.float32),
            'global': np.zeros((2, 2), np.float32)}
  total, per_level = losses.retrieval_loss(
      scores, np.eye(2, dtype=bool), 0.2,
      {'fused': 1.0, 'global': 0.5, 'verb': 1.0})
  assert set(per_level) == {'fused', 'global'}  # No 'verb' scores: skipped.
  np.testing.assert_allclose(total, 0.3 + 0.5 * 0.4, rtol=1e-6)


def test_masked_binary_cross_entropy_matches_numpy_loop():
  rng = np.random.default_rng(4)
  probs = rng.uniform(0.05, 0.95, (5, 7)).astype(np.float32)
  labels = rng.uniform(size=(5, 7)) < 0.3
  mask = (rng.uniform(size=(5, 7)) < 0.7) | labels
  expected = 0.0
  for b in range(5):
    total = 0.0
    for c in range(7):
      if mask[b, c]:
        p = probs[b, c]
        total -= np.log(p) if labels[b, c] else np.log(1 - p)
    expected += total / mask[b].sum()
  loss = losses.masked_binary_cross_entropy(probs, labels, mask)
  np.testing.assert_allclose(loss, expected / 5, rtol=1e-5)
  # A masked concept has no effect, however wrong its prediction.
  flipped = np.where(mask, probs, 1.0 - probs)
  np.testing.assert_allclose(
      losses.masked_binary_cross_entropy(flipped, labels, mask), loss,
      rtol=1e-6)
