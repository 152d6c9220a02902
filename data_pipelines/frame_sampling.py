"""Random frame sampling for training: one random frame per uniform segment.

HCMI (Jiang et al., 2022) samples every training video twice this way and
compares the two views (adaptive label denoising). Evaluation keeps the
deterministic selection of `input_pipeline.select_frames`.
"""

import tensorflow as tf


def segment_indices(count, num_segments, seed):
  """One random frame index in each of `num_segments` uniform segments.

  Args:
    count: int32 scalar tensor, the video's number of frames.
    num_segments: int, the frames to keep.
    seed: (2,) int tensor for `tf.random.stateless_uniform`.

  Returns:
    int32 (min(count, num_segments),) increasing indices: segment k holds
    frames floor(k count / n) to floor((k + 1) count / n) - 1, disjoint and
    never empty; a video with no more frames than segments keeps them all.
  """
  bounds = tf.range(num_segments + 1) * count // num_segments
  starts, widths = bounds[:-1], bounds[1:] - bounds[:-1]
  offsets = tf.random.stateless_uniform([num_segments], seed)
  picked = starts + tf.minimum(
      tf.cast(offsets * tf.cast(widths, tf.float32), tf.int32), widths - 1)
  return tf.cond(count > num_segments, lambda: picked,
                 lambda: tf.range(count))


def gather_padded(frames, indices, max_frames):
  """frames[indices] zero-padded to `max_frames` rows, and the valid mask.

  Args:
    frames: (num_frames, dim) float32.
    indices: (kept,) int32 with kept <= max_frames.
    max_frames: int.

  Returns:
    frames (max_frames, dim) and frame_mask (max_frames,) bool.
  """
  kept = tf.gather(frames, indices)
  num_kept = tf.shape(kept)[0]
  padded = tf.pad(kept, [[0, max_frames - num_kept], [0, 0]])
  padded = tf.ensure_shape(padded, [max_frames, frames.shape[-1]])
  return padded, tf.range(max_frames) < num_kept


def two_views(frames, max_frames, seed):
  """Two independent segment samplings of one video.

  Args:
    frames: (num_frames, dim) float32, all of the video's frames.
    max_frames: int, segments per view.
    seed: (2,) int tensor; the views use seed and seed + (0, 1).

  Returns:
    dict with frames and frames_view2 (max_frames, dim), and frame_mask
    (max_frames,) bool, shared by both views (same number of frames).
  """
  count = tf.shape(frames)[0]
  seed = tf.cast(seed, tf.int64)
  first, mask = gather_padded(
      frames, segment_indices(count, max_frames, seed), max_frames)
  second, _ = gather_padded(
      frames,
      segment_indices(count, max_frames, seed + tf.constant([0, 1], tf.int64)),
      max_frames)
  return {'frames': first, 'frame_mask': mask, 'frames_view2': second}
