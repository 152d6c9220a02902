"""Video files to frames: PyAV decoding at a frame rate, resized and
centre-cropped, with each frame's time (the data side of
`hgr_jax.extract_features`).
"""

import os
from typing import Dict, Tuple

import numpy as np

from data_pipelines import frame_selection
from data_pipelines import release_layout

# Attributes of each video's feature array: its file, and the time in it
# (seconds) of each feature row.
VIDEO_FILE_ATTR = 'video_file'
FRAME_TIMES_ATTR = 'frame_times'


class VideoError(ValueError):
  """A video file that cannot be decoded into frames."""


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
  """(height, width, 3) with both sides >= size -> (size, size, 3)."""
  top = (image.shape[0] - size) // 2
  left = (image.shape[1] - size) // 2
  return image[top:top + size, left:left + size]


def decode(path: str, fps: float, size: int, max_frames: int = 0
           ) -> np.ndarray:
  """Sampled frames of a video file, (frames, size, size, 3) uint8 RGB.

  Raises:
    VideoError: the file is not a decodable video, or yields no frame.
  """
  return decode_with_times(path, fps, size, max_frames)[0]


def decode_with_times(path: str, fps: float, size: int, max_frames: int = 0
                      ) -> Tuple[np.ndarray, np.ndarray]:
  """`decode`'s frames and the time of each in the video, (frames,) seconds.

  Raises:
    VideoError: the file is not a decodable video, or yields no frame.
  """
  import av  # pylint: disable=g-import-not-at-top
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise VideoError('no video stream')
      stream = container.streams.video[0]
      stream.thread_type = 'AUTO'
      images, times, next_time = [], [], 0.0
      for index, frame in enumerate(container.decode(stream)):
        time = frame.time if frame.time is not None else index / float(
            stream.average_rate or 25)
        if time + 1e-6 < next_time:
          continue
        while next_time <= time + 1e-6:
          next_time += 1.0 / fps
        scale = size / min(frame.width, frame.height)
        width = max(size, round(frame.width * scale))
        height = max(size, round(frame.height * scale))
        times.append(time)
        images.append(centre_crop(frame.to_ndarray(
            width=width, height=height, format='rgb24',
            interpolation='BICUBIC'), size))
  except VideoError:
    raise
  except (av.FFmpegError, OSError, ValueError) as e:
    raise VideoError(f'{type(e).__name__}: {e}') from e
  if not images:
    raise VideoError('no frame decoded')
  frames, times = np.stack(images), np.array(times, np.float64)
  if max_frames and len(frames) > max_frames:
    kept = frame_selection.frame_positions(len(frames), max_frames)
    frames, times = frames[kept], times[kept]
  return frames, times


def video_files(folder: str) -> Dict[str, str]:
  """Video name (file name without extension) -> path, of a folder."""
  if not os.path.isdir(folder):
    raise release_layout.ReleaseError(
        f'--videos={folder}: the folder does not exist.')
  files = {}
  for entry in sorted(os.listdir(folder)):
    path = os.path.join(folder, entry)
    if os.path.isfile(path):
      name = os.path.splitext(entry)[0]
      if name in files:
        raise release_layout.ReleaseError(
            f'--videos={folder}: {files[name]} and {path} are both video '
            f'{name!r}; keep one.')
      files[name] = path
  return files
