"""Retrieval metrics from a (videos, captions) score matrix.

Two protocols (config.eval_protocol):
- 'all_captions' (ours): every caption of every video is a query; a
  caption's only positive is its video; a video's positives are all of its
  captions and its rank is that of its best-ranked caption.
- 'official' (cshizhe/hgr_v2t, `evaluate` and `evaluation.eval_q2m`):
  identical sentences of the split are scored once; a sentence's positives
  are all videos it describes and a video's all its distinct sentences; in
  both directions a query's rank is that of its best-ranked positive.
Ranks are 0-based counts of strictly better-scored items (the official code
takes positions in an argsort, which break ties arbitrarily).
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


def best_positive_ranks(scores, positive):
  """Rank of each column's best-scored positive row.

  Args:
    scores: (rows, columns) float.
    positive: (rows, columns) bool; every column has a positive.

  Returns:
    (columns,) int: rows scored strictly above the column's best positive.
  """
  best = np.where(positive, scores, -np.inf).max(axis=0)
  return np.sum(scores > best[None, :], axis=0)


def distinct_sentences(caption_video, sentences, num_videos):
  """The official de-duplication of a split's captions.

  Args:
    caption_video: (captions,) int, the index of each caption's video.
    sentences: (captions,) the captions' texts (anything comparable).
    num_videos: videos of the split.

  Returns:
    columns: (distinct,) the first caption of each distinct sentence.
    positive: (videos, distinct) bool, the videos each sentence describes.
  """
  _, columns, inverse = np.unique(np.asarray(sentences), return_index=True,
                                  return_inverse=True)
  positive = np.zeros((num_videos, columns.size), bool)
  positive[np.asarray(caption_video), inverse.reshape(-1)] = True
  return columns, positive


def _summary(ranks, prefix):
  out = {f'{prefix}_r{k}': 100.0 * float(np.mean(ranks < k)) for k in (1, 5, 10)}
  out[f'{prefix}_medr'] = float(np.median(ranks)) + 1
  out[f'{prefix}_meanr'] = float(np.mean(ranks)) + 1
  return out


PROTOCOLS = ('all_captions', 'official')


def retrieval_metrics(scores, caption_video, protocol='all_captions',
                      sentences=None):
  """R@1/5/10, median and mean rank in both directions, and rsum.

  Args:
    scores: (videos, captions) float array.
    caption_video: (captions,) int, the index of each caption's video.
    protocol: one of PROTOCOLS (see the module docstring).
    sentences: (captions,) texts of the captions; 'official' needs them.

  Returns:
    dict with the keys of METRIC_NAMES.
  """
  scores = np.asarray(scores, np.float32)
  caption_video = np.asarray(caption_video)
  if scores.shape != (scores.shape[0], caption_video.shape[0]):
    raise ValueError(f'scores {scores.shape} do not match '
                     f'{caption_video.shape[0]} captions.')
  if protocol == 'all_captions':
    t2v = text_to_video_ranks(scores, caption_video)
    v2t = video_to_text_ranks(scores, caption_video)
  elif protocol == 'official':
    columns, positive = distinct_sentences(caption_video, sentences,
                                           scores.shape[0])
    scores = scores[:, columns]
    t2v = best_positive_ranks(scores, positive)
    v2t = best_positive_ranks(scores.T, positive.T)
  else:
    raise ValueError(f'Unknown config.eval_protocol={protocol!r}; expected '
                     f'one of {PROTOCOLS}.')
  out = _summary(t2v, 't2v')
  out.update(_summary(v2t, 'v2t'))
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
