"""Which frames of a video a model sees: the official even spacing, in NumPy.

`input_pipeline.select_frames` is the same rule inside tf.data (tested
equal); search indexes videos with this one, and `extract_features` thins
decoded frames with it.
"""

import numpy as np


def frame_positions(num_frames, max_frames):
  """(max_frames,) index in the original video of each kept frame.

  round(linspace(0, num_frames - 1, max_frames)) when the video is longer
  than `max_frames`; otherwise 0, 1, ... (entries past the video's end are
  padding).
  """
  if num_frames > max_frames:
    return np.round(np.linspace(0, num_frames - 1, max_frames)).astype(int)
  return np.arange(max_frames)


def select_frames(frames, max_frames):
  """At most `max_frames` frames, evenly spaced, zero-padded.

  Args:
    frames: (num_frames, dim).
    max_frames: frames kept.

  Returns:
    frames (max_frames, dim) float32 and frame_mask (max_frames,) bool.
  """
  kept = frames[frame_positions(len(frames), max_frames)[:min(
      len(frames), max_frames)]]
  padded = np.zeros((max_frames, frames.shape[-1]), np.float32)
  padded[:len(kept)] = kept
  return padded, np.arange(max_frames) < len(kept)
