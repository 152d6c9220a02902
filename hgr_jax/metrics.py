"""Retrieval metrics from a (videos, captions) score matrix, the official rule.

A caption's only positive is its video; a video's positives are all of its
captions and its rank is that of its best-ranked caption. Ranks are 0-based
counts of strictly better-scored items.
"""

import numpy as np

METRIC_NAMES = ('t2v_r1', 't2v_r5', 't2v_r10', 't2v_medr', 't2v_meanr',
                'v2t_r1', 'v2t_r5', 'v2t_r10', 'v2t_medr', 'v2t_meanr', 'rsum')


def text_to_video_ranks(scores, caption_video):
  """scores: (videos, captions), caption_video: (captions,) -> (captions,) ranks."""
  captions = np.arange(scores.shape[1])
  positive = scores[caption_video, captions]
  return np.sum(scores > positive[None, :], axis=0)


def video_to_text_ranks(scores, caption_video):
  """scores: (videos, captions), caption_video: (captions,) -> (videos,) ranks."""
  best_positive = np.full(scores.shape[0], -np.inf, scores.dtype)
  np.maximum.at(best_positive, caption_video,
                scores[caption_video, np.arange(scores.shape[1])])
  return np.sum(scores > best_positive[:, None], axis=1)


def _summary(ranks, prefix):
  out = {f'{prefix}_r{k}': 100.0 * float(np.mean(ranks < k)) for k in (1, 5, 10)}
  out[f'{prefix}_medr'] = float(np.median(ranks)) + 1
  out[f'{prefix}_meanr'] = float(np.mean(ranks)) + 1
  return out


def retrieval_metrics(scores, caption_video):
  """R@1/5/10, median and mean rank in both directions, and rsum.

  Args:
    scores: (videos, captions) float array.
    caption_video: (captions,) int, the index of each caption's video.

  Returns:
    dict with the keys of METRIC_NAMES.
  """
  scores = np.asarray(scores, np.float32)
  caption_video = np.asarray(caption_video)
  if scores.shape != (scores.shape[0], caption_video.shape[0]):
    raise ValueError(f'scores {scores.shape} do not match '
                     f'{caption_video.shape[0]} captions.')
  out = _summary(text_to_video_ranks(scores, caption_video), 't2v')
  out.update(_summary(video_to_text_ranks(scores, caption_video), 'v2t'))
  out['rsum'] = sum(out[f'{d}_r{k}'] for d in ('t2v', 'v2t') for k in (1, 5, 10))
  return out


def format_table(rows):
  """Formats {name: metrics} as a fixed-width text table."""
  columns = ('t2v_r1', 't2v_r5', 't2v_r10', 't2v_medr', 'v2t_r1', 'v2t_r5',
             'v2t_r10', 'v2t_medr', 'rsum')
  width = max([len('model')] + [len(name) for name in rows])
  lines = ['  '.join([f"{'model':<{width}}"] + [f'{c:>8}' for c in columns])]
  for name, metrics in rows.items():
    lines.append('  '.join([f'{name:<{width}}'] +
                           [f'{metrics[c]:>8.1f}' for c in columns]))
  return '\n'.join(lines)
