"""Retrieval metrics against the official argsort loop and a hand example."""

import numpy as np

from hgr_jax import metrics


def _official_ranks(scores, positives):
  """For each query row, the best position of a positive in argsort order."""
  ranks = []
  for row, gts in zip(scores, positives):
    order = np.argsort(-row, kind='stable')
    ranks.append(min(int(np.flatnonzero(order == g)[0]) for g in gts))
  return np.array(ranks)


def test_matches_official_loop():
  rng = np.random.default_rng(0)
  caption_video = np.repeat(np.arange(30), rng.integers(1, 6, 30))
  scores = rng.normal(size=(30, len(caption_video))).astype(np.float32)
  scores[caption_video, np.arange(len(caption_video))] += 1.5
  got = metrics.retrieval_metrics(scores, caption_video)
  t2v = _official_ranks(scores.T, [[v] for v in caption_video])
  v2t = _official_ranks(scores, [np.flatnonzero(caption_video == v)
                                 for v in range(30)])
  for prefix, ranks in (('t2v', t2v), ('v2t', v2t)):
    for k in (1, 5, 10):
      np.testing.assert_allclose(got[f'{prefix}_r{k}'],
                                 100 * np.mean(ranks < k))
    assert got[f'{prefix}_medr'] == np.median(ranks) + 1
    np.testing.assert_allclose(got[f'{prefix}_meanr'], ranks.mean() + 1)
  np.testing.assert_allclose(
      got['rsum'], sum(got[f'{p}_r{k}'] for p in ('t2v', 'v2t')
                       for k in (1, 5, 10)))


def test_hand_worked_example():
  # 2 videos, 3 captions: captions 0, 1 describe video 0, caption 2 video 1.
  scores = np.array([[0.9, 0.2, 0.3],
                     [0.1, 0.5, 0.4]], np.float32)
  got = metrics.retrieval_metrics(scores, np.array([0, 0, 1]))
  # t2v ranks: caption 0 -> 0, caption 1 -> 1 (video 1 scores 0.5 > 0.2),
  # caption 2 -> 0. v2t: video 0's best caption (0.9) ranks 0; video 1's
  # caption 2 (0.4) is beaten by caption 1 (0.5): rank 1.
  np.testing.assert_allclose(got['t2v_r1'], 200 / 3)
  assert got['t2v_r5'] == 100.0
  assert got['v2t_r1'] == 50.0
  assert got['v2t_medr'] == 1.5
  np.testing.assert_allclose(got['t2v_meanr'], 4 / 3)
