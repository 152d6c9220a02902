r"""CLIP frame features of raw videos, in the release layout.

  python -m hgr_jax.extract_features --videos=DIR --clip_dir=CKPT \
      --splits=splits.json --out=RELEASE --fps=1

Every file of DIR whose name without extension is a video of the split file
({"train": [video, ...], "validation": [...], "test": [...]}) is decoded
with PyAV (`pip install -e '.[video]'`); the first frame at or after each
multiple of 1/fps seconds is kept, resized (shorter side, bicubic) and
centre-cropped to the tower's image size, normalised with the checkpoint's
pixel statistics and embedded by the vision tower (the projected class
token, CLIP's image embedding, not normalised) in batches split over every
local device. Each video's (frames, projection_dim) float32 array goes to
RELEASE/ordered_feature/SA/<feature_name>/{trn,val,tst}_ft.hdf5, the layout
`release_layout` reads; the array's attributes `video_file` and
`frame_times` (seconds) say which frame of which file each row is, so that
search can show them.

Running again skips the videos already written. A video that cannot be
decoded, or yields no frame, is reported by name and skipped; the summary at
the end lists them, the split's videos without a file and the files of no
split.
"""

import collections
import concurrent.futures
import dataclasses
import os
import sys
from typing import Dict, Iterator, List

from absl import app
from absl import flags
from absl import logging
import h5py
import jax
import numpy as np
import tqdm

from data_pipelines import release_layout
from data_pipelines import video_decoding
from data_pipelines.video_decoding import VideoError
from hgr_jax import clip_checkpoint
from hgr_jax import platform
from hgr_jax import sharding
from hgr_jax.models import clip

FLAGS = flags.FLAGS


def _define_flags():
  flags.DEFINE_string('videos', None, 'Folder of video files.')
  flags.DEFINE_string('clip_dir', None, 'Local CLIP checkpoint folder '
                      '(Hugging Face layout).')
  flags.DEFINE_string(
      'splits', None, 'JSON file {"train": [video, ...], "validation": '
      '[...], "test": [...]}; a video is its file name without extension.')
  flags.DEFINE_string('out', None, 'Release root to write into.')
  flags.DEFINE_string('feature_name', 'clip', 'Folder under '
                      "ordered_feature/SA/ (the configs' feature_names).")
  flags.DEFINE_float('fps', 1.0, 'Frames kept per second of video.')
  flags.DEFINE_integer('max_frames', 0, 'At most this many frames per video, '
                       'evenly spaced over the kept ones; 0: all.')
  flags.DEFINE_integer('batch_size', 64, 'Frames per call of the vision '
                       'tower (rounded up to a multiple of the device count).')
  flags.DEFINE_integer('decode_threads', 4, 'Videos decoded ahead of the '
                       'tower in parallel.')
  flags.mark_flags_as_required(['videos', 'clip_dir', 'splits', 'out'])


class FrameEmbedder:
  """The CLIP vision tower of a checkpoint, jitted over all local devices."""

  def __init__(self, clip_dir: str, batch_size: int):
    self.sizes, params = clip_checkpoint.load_tower(clip_dir, 'vision')
    mean, std = clip_checkpoint.image_statistics(clip_dir)
    mesh = sharding.data_mesh(jax.local_devices())
    devices = len(jax.local_devices())
    self.batch_size = -(-batch_size // devices) * devices
    self._params = jax.device_put(params, sharding.replicated(mesh))
    tower = clip.VisionTower(self.sizes)

    def embed(params, images):
      pixels = (images.astype(np.float32) / 255.0 - mean) / std
      return tower.apply({'params': params}, pixels)
    self._embed = jax.jit(embed, in_shardings=(
        sharding.replicated(mesh), sharding.batch_sharded(mesh)),
                          out_shardings=sharding.replicated(mesh))

  def __call__(self, frames: np.ndarray) -> np.ndarray:
    """(frames, size, size, 3) uint8 -> (frames, projection_dim) float32."""
    outputs = []
    for start in range(0, len(frames), self.batch_size):
      chunk = frames[start:start + self.batch_size]
      padded = np.zeros((self.batch_size, *chunk.shape[1:]), chunk.dtype)
      padded[:len(chunk)] = chunk
      outputs.append(np.asarray(self._embed(self._params, padded))[
          :len(chunk)])
    return np.concatenate(outputs).astype(np.float32)


def _prefetched(function, items, threads) -> Iterator:
  """(item, function(item) or the VideoError raised) in order, computed
  `threads` items ahead in a thread pool (PyAV decodes without the GIL)."""
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    pending = collections.deque()
    items = iter(items)
    def submit():
      for item in items:
        pending.append((item, pool.submit(function, item)))
        return
    for _ in range(max(1, threads) * 2):
      submit()
    while pending:
      item, future = pending.popleft()
      submit()
      try:
        yield item, future.result()
      except VideoError as e:
        yield item, e


@dataclasses.dataclass
class Summary:
  """What one extraction run did."""
  written: int = 0
  already_written: int = 0
  failed: Dict[str, str] = dataclasses.field(default_factory=dict)
  missing: List[str] = dataclasses.field(default_factory=list)
  unused_files: int = 0

  def describe(self) -> str:
    lines = [f'{self.written} videos written, {self.already_written} already '
             f'there, {len(self.failed)} failed, {len(self.missing)} without '
             f'a file, {self.unused_files} files in no split.']
    lines += [f'  failed: {name}: {reason}'
              for name, reason in sorted(self.failed.items())]
    if self.missing:
      lines.append(f'  without a file: {", ".join(self.missing[:20])}'
                   + (' ...' if len(self.missing) > 20 else ''))
    return '\n'.join(lines)


def extract(videos: str, clip_dir: str, splits: Dict[str, List[str]],
            out: str, feature_name: str = 'clip', fps: float = 1.0,
            max_frames: int = 0, batch_size: int = 64,
            decode_threads: int = 4) -> Summary:
  """Writes the frame features of every video of `splits`; see the module
  docstring.

  Args:
    videos: folder of video files.
    clip_dir: local CLIP checkpoint folder.
    splits: project split name -> video names (`release_layout.read_splits`).
    out: release root.
    feature_name: folder under ordered_feature/SA/.
    fps, max_frames, batch_size, decode_threads: as the flags.
  """
  try:
    import av  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise ValueError("Decoding videos needs PyAV: pip install -e '.[video]'"
                     ) from e
  files = video_decoding.video_files(videos)
  embedder = FrameEmbedder(clip_dir, batch_size)
  size = embedder.sizes.image_size
  summary = Summary()
  in_splits = {name for names in splits.values() for name in names}
  summary.unused_files = len(set(files) - in_splits)
  for split, names in splits.items():
    path = release_layout.frame_features_path(out, feature_name, split)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, 'a') as features:
      pending = []
      for name in names:
        if release_layout.feature_key(name) in features:
          summary.already_written += 1
        elif name not in files:
          summary.missing.append(name)
        else:
          pending.append(name)
      decoded = _prefetched(
          lambda name: video_decoding.decode_with_times(
              files[name], fps, size, max_frames),
          pending, decode_threads)
      for name, frames in tqdm.tqdm(decoded, total=len(pending),
                                    desc=f'{split} videos', unit='video'):
        if isinstance(frames, VideoError):
          logging.warning('Skipped %s: %s', files[name], frames)
          summary.failed[files[name]] = str(frames)
          continue
        frames, times = frames
        written = features.create_dataset(release_layout.feature_key(name),
                                          data=embedder(frames))
        # Where each feature row came from: search shows these frames.
        written.attrs[video_decoding.VIDEO_FILE_ATTR] = os.path.abspath(files[name])
        written.attrs[video_decoding.FRAME_TIMES_ATTR] = times
        features.flush()  # A later interruption keeps this video.
        summary.written += 1
  return summary


def main(argv):
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  try:
    summary = extract(FLAGS.videos, FLAGS.clip_dir,
                      release_layout.read_splits(FLAGS.splits), FLAGS.out,
                      FLAGS.feature_name, FLAGS.fps, FLAGS.max_frames,
                      FLAGS.batch_size, FLAGS.decode_threads)
  except ValueError as e:  # ReleaseError and CheckpointError among them.
    sys.exit(f'extract_features: {e}')
  print(summary.describe())


if __name__ == '__main__':
  _define_flags()
  app.run(main)
