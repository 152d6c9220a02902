"""Indexing: encodes a video collection with an export into index shards."""

import dataclasses
import os
import shutil
from typing import Any, Callable, Dict, List, Optional

import flax
import h5py
import jax
import numpy as np
import tqdm

from data_pipelines import video_decoding
from data_pipelines import frame_selection
from data_pipelines import input_pipeline
from hgr_jax import evaluate
from hgr_jax import sharding
from hgr_jax.search import first_stage
from hgr_jax.search import index_format as fmt


@dataclasses.dataclass
class VideoSource:
  """A collection to index.

  Attributes:
    description: JSON-able identity of the collection, kept in index.json.
    video_ids: every video's id, in index order.
    read: (start, stop) -> list of (num_frames, dim) arrays of those videos.
    close: releases files.
    files: (start, stop) -> for each of those videos, [video file, [time in
      it of each frame row]] or None; None: no video has a file.
  """
  description: Dict[str, Any]
  video_ids: List[str]
  read: Callable[[int, int], List[np.ndarray]]
  close: Callable[[], None] = lambda: None
  files: Optional[Callable[[int, int], List[Optional[list]]]] = None


def hdf5_source(path):
  """Videos of an HDF5 file {video id: (num_frames, dim)}, in its key order.

  Arrays written by `hgr_jax.extract_features` name their video file
  and frame times; the index keeps them (thumbnails in `hgr_jax.serve`).
  """
  if not os.path.isfile(path):
    raise fmt.SearchError(f'--features={path} does not exist: pass an HDF5 '
                          'file of {video id: (frames, dim) features}.')
  try:
    features = h5py.File(path, 'r')
  except OSError as e:
    raise fmt.SearchError(f'--features={path} is not a readable HDF5 file '
                          f'({e}).') from e
  ids = list(features.keys())
  if not ids:
    raise fmt.SearchError(f'--features={path} holds no videos.')
  read = lambda start, stop: [np.asarray(features[i], np.float32)
                              for i in ids[start:stop]]

  def files(start, stop):
    found = []
    for i in ids[start:stop]:
      attrs = features[i].attrs
      found.append([str(attrs[video_decoding.VIDEO_FILE_ATTR]),
                    [float(t) for t in attrs[video_decoding.FRAME_TIMES_ATTR]]]
                   if video_decoding.VIDEO_FILE_ATTR in attrs else None)
    return found
  return VideoSource({'features': os.path.abspath(path),
                      'videos': len(ids)}, ids, read, features.close, files)


def dataset_source(config, split):
  """Videos of a split of the config's dataset, in stored order."""
  builder = input_pipeline.prepare(input_pipeline.get_builder(config),
                                   manual_dir=config.get('release_dir'))
  ids = input_pipeline.video_ids(builder, split)
  examples = iter(builder.as_dataset(split=split, shuffle_files=False)
                  .as_numpy_iterator())
  position = [0]

  def read(start, stop):
    # Shards are read in order; ones already written are skipped here.
    for _ in range(start - position[0]):
      next(examples)
    position[0] = stop
    return [next(examples)['frames'] for _ in range(stop - start)]
  return VideoSource({'dataset': builder.info.full_name, 'split': split,
                      'videos': len(ids)}, ids, read)


def _check_feature_dim(frames, expected, source):
  if frames.ndim != 2 or frames.shape[-1] != expected:
    raise fmt.SearchError(
        f'{source} holds features of shape {frames.shape[-1:]} per frame; '
        f'the export expects ({expected},) (the features it was trained on): '
        'extract the same features, or use an export trained on these.')


def build_index(exported, source, out, chunk_size=1000, batch_size=256,
                progress=True, token_dtype=fmt.DEFAULT_TOKEN_DTYPE,
                ann=True):
  """Encodes every video of `source` into shards under `out`, then builds
  the first stage's ANN over their global vectors.

  Shards are written whole (a temporary folder renamed), so a run cut short
  leaves complete shards only, and running the same command again encodes
  just the missing ones; the ANN resumes the same way
  (`first_stage.build_ann`). Memory holds one chunk.

  Args:
    exported: an `export.ExportedModel`.
    source: a `VideoSource`.
    out: the index folder.
    chunk_size: videos per shard.
    batch_size: videos per encoder call (split over the local devices).
    progress: show a progress bar.
    token_dtype: storage of the per-token arrays (`TOKEN_DTYPES`).
    ann: build the ANN (models with a global score only).

  Returns:
    The index header (index.json).
  """
  fmt.check_token_dtype(token_dtype)
  header = {'format_version': fmt.INDEX_FORMAT_VERSION,
            'export_hash': exported.content_hash,
            'model_name': exported.name, 'source': source.description,
            'num_videos': len(source.video_ids), 'chunk_size': chunk_size,
            'token_dtype': token_dtype}
  header_path = os.path.join(out, fmt.INDEX_FILE)
  if os.path.exists(header_path):
    existing = fmt.read_json(header_path)
    fmt.check_format(existing, out)
    fmt.check_export(existing, exported, out)
    existing.pop('complete', None)
    if existing != header:
      raise fmt.SearchError(
          f'{out} holds an index of another collection, chunk size or token '
          f'dtype ({existing["source"]}, chunk {existing["chunk_size"]}, '
          f'{existing["token_dtype"]}): index into a new --out, or delete '
          'it.')
  os.makedirs(out, exist_ok=True)
  fmt.write_json(header_path, {**header, 'complete': False})
  evaluator = evaluate.Evaluator(
      exported.model, sharding.data_mesh(jax.local_devices()),
      min(batch_size, chunk_size))
  num_videos = len(source.video_ids)
  bar = tqdm.tqdm(total=num_videos, unit='video', disable=not progress,
                  desc='Indexing')
  try:
    for shard, start in enumerate(range(0, num_videos, chunk_size)):
      stop = min(start + chunk_size, num_videos)
      if not os.path.isdir(fmt.shard_dir(out, shard)):
        _write_shard(out, shard, source, start, stop, evaluator, exported,
                     token_dtype)
      bar.update(stop - start)
  finally:
    bar.close()
    source.close()
  fmt.write_json(header_path, {**header, 'complete': True})
  global_keys = exported.model.search_hooks().global_keys
  if ann and global_keys:
    first_stage.build_ann(out, global_keys[0], progress=progress)
  return header


def _write_shard(out, shard, source, start, stop, evaluator, exported,
                 token_dtype):
  """Encodes videos [start, stop) and writes them as one shard."""
  max_frames = exported.manifest['max_frames']
  videos = source.read(start, stop)
  for video_id, frames in zip(source.video_ids[start:stop], videos):
    _check_feature_dim(frames, exported.manifest['feature_dim'],
                       f'Video {video_id!r} of {source.description}')
  selected = [frame_selection.select_frames(frames, max_frames)
              for frames in videos]
  batch = {'frames': np.stack([f for f, _ in selected]),
           'frame_mask': np.stack([m for _, m in selected])}
  encoded = evaluator.encode_videos(exported.variables, [batch])
  staging = fmt.shard_dir(out, shard) + '.partial'
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(staging)
  flat = flax.traverse_util.flatten_dict(jax.device_get(encoded), sep='/')
  tokens = {k: v for k, v in flat.items() if fmt.is_token_array(v)}
  if tokens:
    np.save(os.path.join(staging, fmt.RECORDS_FILE),
            fmt.encode_records(tokens, token_dtype))
  for key, value in flat.items():
    if key not in tokens:
      np.save(os.path.join(staging, fmt.encoded_file(key)), value)
  np.save(os.path.join(staging, fmt.NUM_FRAMES_FILE),
          np.array([len(f) for f in videos], np.int32))
  fmt.write_json(os.path.join(staging, fmt.IDS_FILE),
                 source.video_ids[start:stop])
  files = source.files(start, stop) if source.files else None
  if files and any(files):
    fmt.write_json(os.path.join(staging, fmt.VIDEO_FILES_FILE), files)
  os.rename(staging, fmt.shard_dir(out, shard))
