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



def _assert_metrics_of_ranks(got, t2v, v2t):
  """got's R@K, MedR and MeanR are those of the 0-based ranks t2v, v2t."""
  for prefix, ranks in (('t2v', t2v), ('v2t', v2t)):
    for k in (1, 5, 10):
      np.testing.assert_allclose(got[f'{prefix}_r{k}'],
                                 100 * np.mean(ranks < k))
    assert got[f'{prefix}_medr'] == np.median(ranks) + 1
    np.testing.assert_allclose(got[f'{prefix}_meanr'], ranks.mean() + 1)

def test_matches_official_loop():
  rng = np.random.default_rng(0)
  caption_video = np.repeat(np.arange(30), rng.integers(1, 6, 30))
  scores = rng.normal(size=(30, len(caption_video))).astype(np.float32)
  scores[caption_video, np.arange(len(caption_video))] += 1.5
  got = metrics.retrieval_metrics(scores, caption_video)
  t2v = _official_ranks(scores.T, [[v] for v in caption_video])
  v2t = _official_ranks(scores, [np.flatnonzero(caption_video == v)
                                 for v in range(30)])
  _assert_metrics_of_ranks(got, t2v, v2t)
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


def test_official_protocol_hand_worked_example():
  # 3 videos, 5 captions; captions 0 and 2 are the same sentence 'a', of
  # videos 0 and 1, so their score columns are equal.
  sentences = np.array(['a', 'b', 'a', 'c', 'd'])
  caption_video = np.array([0, 0, 1, 1, 2])
  scores = np.array([[0.5, 0.9, 0.5, 0.1, 0.2],
                     [0.7, 0.3, 0.7, 0.6, 0.8],
                     [0.2, 0.4, 0.2, 0.3, 0.1]], np.float32)
  got = metrics.retrieval_metrics(scores, caption_video, 'official', sentences)
  # t2v over sentences a, b, c, d: 'a' hits video 1 (0.7), the best of its
  # videos -> 0; 'b' -> 0; 'c' -> 0; 'd' (0.1) is beaten by two videos -> 2.
  assert got['t2v_r1'] == 75.0
  assert got['t2v_medr'] == 1.0
  assert got['t2v_meanr'] == 1.5
  # v2t over the 4 distinct sentences: video 0's best ('b', 0.9) -> 0;
  # video 1's best ('a', 0.7) is beaten by 'd' (0.8) -> 1; video 2's 'd'
  # (0.1) by the 3 others -> 3.
  np.testing.assert_allclose(got['v2t_r1'], 100 / 3)
  assert got['v2t_r5'] == 100.0
  assert got['v2t_medr'] == 2.0
  np.testing.assert_allclose(got['v2t_meanr'], 7 / 3)
  # Ours counts caption 0 as a miss (video 1 scores above its video 0) and
  # video 2 is beaten by 4 captions, the repeated 'a' twice.
  ours = metrics.retrieval_metrics(scores, caption_video)
  assert ours['t2v_r1'] == 60.0
  np.testing.assert_allclose(ours['v2t_meanr'], 8 / 3)


def _official_metrics_loop(scores, caption_video, sentences):
  """As hgr_v2t: distinct sentences in set order, positives by membership
  in each video's reference captions, then eval_q2m both ways."""
  ref_captions = {}
  for video, sentence in zip(caption_video, sentences):
    ref_captions.setdefault(video, []).append(sentence)
  cap_names = list(set(sentences))
  first = [list(sentences).index(name) for name in cap_names]
  distinct_scores = scores[:, first]
  i2t_gts = [[i for i, name in enumerate(cap_names)
              if name in ref_captions[video]]
             for video in range(scores.shape[0])]
  t2i_gts = {}
  for video, gts in enumerate(i2t_gts):
    for gt in gts:
      t2i_gts.setdefault(gt, []).append(video)
  v2t = _official_ranks(distinct_scores, i2t_gts)
  t2v = _official_ranks(distinct_scores.T,
                        [t2i_gts[i] for i in range(len(cap_names))])
  return t2v, v2t


def test_official_protocol_matches_official_loop():
  rng = np.random.default_rng(1)
  caption_video = np.repeat(np.arange(40), rng.integers(1, 6, 40))
  # Sentences from a small pool, so that many repeat within and across
  # videos; a repeated sentence has the same scores.
  sentences = np.array([f'sentence {i}' for i in
                        rng.integers(0, 60, len(caption_video))])
  pool_scores = rng.normal(size=(40, 60)).astype(np.float32)
  ids = np.array([int(s.split()[1]) for s in sentences])
  scores = pool_scores[:, ids]
  scores[caption_video, np.arange(len(caption_video))] += 1.5
  # A sentence's score column must not depend on which of its captions it
  # came from; make repeats equal again after the boost.
  for i in range(len(ids)):
    scores[:, i] = scores[:, np.flatnonzero(ids == ids[i])[0]]
  assert len(set(sentences)) < len(sentences)
  got = metrics.retrieval_metrics(scores, caption_video, 'official', sentences)
  t2v, v2t = _official_metrics_loop(scores, caption_video, sentences)
  _assert_metrics_of_ranks(got, t2v, v2t)


def test_unknown_protocol_is_refused():
  with np.testing.assert_raises_regex(ValueError, 'config.eval_protocol'):
    metrics.retrieval_metrics(np.zeros((1, 1)), np.array([0]), 'paper')
