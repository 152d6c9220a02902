"""Text-to-video search: index a video collection with an export, query it.

  python -m hgr_jax.search index --export=EXPORT --features=FILE.hdf5 \
      --out=INDEX
  python -m hgr_jax.search index --export=EXPORT \
      --config=configs/synthetic.py --split=test --out=INDEX
  python -m hgr_jax.search query --export=EXPORT --index=INDEX \
      --query="a man throws a ball to a dog" --k=10 [--explain]
  python -m hgr_jax.search query --export=EXPORT --index=INDEX \
      --queries_file=queries.txt --candidates=0   # exhaustive

An index is a folder of shards, one per `--chunk_size` videos, each holding
the encoded videos (the frame or clip vectors as one record per video, int8
by default, `--token_dtype`; the rest as .npy arrays), their ids and frame
counts; `index.json` names the export (content hash) it was built with.
Building skips shards already written, so an interrupted run resumes.

A query is parsed into its role graph (when the model uses one), encoded,
and ranked in two stages by default: the global (event/sentence, or
video/sentence for HCMI) cosine over the whole collection picks
`--candidates` videos, whose records are read from the shards (one read
each), and the model's full score re-ranks them (HGR: from the records'
stored Gram matrices, one jitted call). `--candidates=0` scores every video
with the full score instead, streaming the shards through
`retrieval.streaming_top_k`.
"""

import dataclasses
import functools
import json
import math
import os
import shutil
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import flax
import h5py
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np
import tqdm

from data_pipelines import caption_parser
from data_pipelines import caption_text
from data_pipelines import input_pipeline
from data_pipelines import release_layout
from data_pipelines import role_graph
from hgr_jax import evaluate
from hgr_jax import export as export_lib
from hgr_jax import retrieval
from hgr_jax import sharding
from hgr_jax.models import layers
from hgr_jax.models import matching

# 2: token arrays in one record per video (RECORDS_FILE), int8 by default.
INDEX_FORMAT_VERSION = 2
INDEX_FILE = 'index.json'
IDS_FILE = 'video_ids.json'
NUM_FRAMES_FILE = 'num_frames.npy'
RECORDS_FILE = 'records.npy'
_ENCODED_PREFIX = 'encoded.'
# Record fields beside a token array's codes: code * scale = value per token,
# and the video's (tokens, tokens) Gram matrix, taken before quantisation.
_SCALE = ':scale'
_GRAM = ':gram'
TOKEN_DTYPES = ('int8', 'float32')
# int8 quarters the bytes a candidate costs to read; on the synthetic HGR
# (docs/search.md) it moved fused scores by at most 4e-4 and R@1/5/10 by at
# most one query against float32 exhaustive search. Ours, from
# benchmarks/search_latency.py.
DEFAULT_TOKEN_DTYPE = 'int8'
# The smallest measured candidate count at which two-stage search lost no
# recall against exhaustive search, on the synthetic test split and a
# generated 3,000-video collection (docs/search.md; 200 lost 1 point of R@10
# on the latter). Ours, from benchmarks/search_latency.py.
DEFAULT_CANDIDATES = 1000
_EXPLAIN_TOKENS = 3  # Frames (clips) listed per query token by --explain.


class SearchError(ValueError):
  """Bad input to indexing or search; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class Alignment:
  """Query tokens of one kind matched against video tokens, for --explain.

  Attributes:
    video_key: encoded video tokens, (videos, tokens, width).
    text_key: encoded query tokens, (queries, slots, width).
    unit: 'frame' (numbered in the original video, before frame selection)
      or 'clip' (the model's learned clips, in encoder order).
    attention: rank by HGR's phrase-to-frame attention weights (softmax
      with the model's sigma); otherwise by the token cosine, as the
      token-wise interaction picks each word's best frame.
  """
  video_key: str
  text_key: str
  unit: str = 'frame'
  attention: bool = True


# What search needs to know about a model beyond the DualEncoder interface.
@dataclasses.dataclass(frozen=True)
class ModelHooks:
  """Per-model facts that search uses.

  Attributes:
    uses_role_graph: queries need their role graph (the caption parser).
    global_keys: (encoded video key, encoded text key) whose cosine is the
      model's global score: the first stage of two-stage search. None: the
      model has none, search is exhaustive.
    alignments: query token kind ('verb', 'noun': role graph nodes; 'word':
      the query's tokens; others: the model's learned slots, numbered) ->
      the `Alignment` --explain reports.
    rerank: (model, tokens, columns, text, global cosines) -> the model's
      scores of two-stage candidates from the index's records (`hgr_rerank`),
      jitted once; None: the model's `scores` of the decoded candidates.
    rerank_columns: the small per-video arrays `rerank` reads, held in
      memory.
    cut_queries: the text encoder gives the same outputs for captions cut to
      their length (`cut_words`; tested for HGR), so queries are encoded
      without the padding steps.
  """
  uses_role_graph: bool = True
  global_keys: Optional[tuple] = ('event', 'sentence')
  alignments: Mapping[str, Alignment] = dataclasses.field(
      default_factory=dict)
  rerank: Optional[Callable[..., Dict[str, Any]]] = None
  rerank_columns: tuple = ()
  cut_queries: bool = False


def phrase_scores_from_gram(codes, scale, gram, valid, phrases, phrase_mask,
                            sigma):
  """HGR's phrase-to-frame score of videos for one query, from the index.

  `matching.phrase_frame_scores` of the frames codes x scale, with the
  frames' Gram matrix read from the index instead of computed, and their
  norms its diagonal: the product of the codes with the phrases is the only
  (width)-sized work left, and the codes need no normalising pass.

  Args:
    codes: (videos, frames, width) float32; frame = codes x scale.
    scale: (videos, frames) float32.
    gram: (videos, frames, frames) Gram matrix of the frames.
    valid: (videos, frames) bool.
    phrases: (phrases, width) one query's phrase nodes.
    phrase_mask: (phrases,) bool.
    sigma: HGR's attention temperature.

  Returns:
    (videos,) mean over valid phrases of the cosine between the phrase and
    its attended frame vector.
  """
  # safe_norm's clamp (1e-10) on the norms, as the model's.
  norms = jnp.sqrt(jnp.maximum(jnp.diagonal(gram, axis1=1, axis2=2), 1e-20))
  cosines = jnp.einsum('vfd,pd->vfp', codes, layers.l2_normalize(phrases),
                       preferred_element_type=jnp.float32)
  cosines = cosines * (scale / norms)[..., None]
  clipped = jnp.where(valid[..., None], jax.nn.relu(cosines), 0.0)
  weights = layers.masked_softmax(
      sigma * layers.l2_normalize(clipped, axis=1), valid[..., None], axis=1)
  dot = jnp.sum(weights * cosines * norms[..., None], axis=1)
  squared_norm = jnp.sum(weights * jnp.einsum('vfg,vgp->vfp', gram, weights),
                         axis=1)
  scores = dot / jnp.sqrt(jnp.maximum(squared_norm, 1e-20))
  mask = phrase_mask.astype(scores.dtype)
  return jnp.sum(scores * mask, -1) / jnp.maximum(jnp.sum(mask), 1.0)


def hgr_rerank(model, tokens, columns, text, global_cosines):
  """HGR's scores of candidates for one query (`matching.hgr_scores`).

  Args:
    model: the HGR module (its attention temperature).
    tokens: {'actions', 'entities'}: (codes, scale, gram) of the candidates.
    columns: {'frame_mask': (videos, frames) bool}.
    text: one encoded query, no batch axis.
    global_cosines: (videos,) the first stage's event/sentence cosines.

  Returns:
    dict of (videos,) scores: global, verb, noun and fused.
  """
  scores = {'global': global_cosines}
  for level, video_key in (('verb', 'actions'), ('noun', 'entities')):
    scores[level] = phrase_scores_from_gram(
        *tokens[video_key], columns['frame_mask'], text[f'{level}s'],
        text[f'{level}_mask'], model.attention_sigma)
  scores['fused'] = (scores['global'] + scores['verb'] + scores['noun']) / 3
  return scores


MODEL_HOOKS = {
    'hgr': ModelHooks(alignments={'verb': Alignment('actions', 'verbs'),
                                  'noun': Alignment('entities', 'nouns')},
                      rerank=hgr_rerank, rerank_columns=('frame_mask',),
                      cut_queries=True),
    # HANet's local levels match clips; its individual levels match frames.
    'hanet': ModelHooks(alignments={
        'verb': Alignment('actions', 'verb_phrases'),
        'noun': Alignment('entities', 'noun_phrases')}),
    # HCMI's video_sentence level is this cosine; its phrases are learned
    # slots without words of their own, so they are numbered.
    'hcmi': ModelHooks(
        uses_role_graph=False, global_keys=('video', 'sentence'),
        alignments={'word': Alignment('frames', 'words', attention=False),
                    'phrase': Alignment('clips', 'phrases', unit='clip',
                                        attention=False)}),
    'vsepp': ModelHooks(uses_role_graph=False),
}


def hooks_for(model_name):
  """The `ModelHooks` of a registered model (role graph, no shortcuts)."""
  return MODEL_HOOKS.get(model_name, ModelHooks(global_keys=None))


# ----------------------------------------------------------------- frames --

def select_frames(frames, max_frames):
  """NumPy twin of `input_pipeline.select_frames`.

  Args:
    frames: (num_frames, dim).
    max_frames: frames kept, evenly spaced (round(linspace)).

  Returns:
    frames (max_frames, dim) float32, zero-padded, and frame_mask
    (max_frames,) bool.
  """
  kept = frames[frame_positions(len(frames), max_frames)[:min(
      len(frames), max_frames)]]
  padded = np.zeros((max_frames, frames.shape[-1]), np.float32)
  padded[:len(kept)] = kept
  return padded, np.arange(max_frames) < len(kept)


def frame_positions(num_frames, max_frames):
  """(max_frames,) index in the original video of each kept frame."""
  if num_frames > max_frames:
    return np.round(np.linspace(0, num_frames - 1, max_frames)).astype(int)
  return np.arange(max_frames)


@dataclasses.dataclass
class VideoSource:
  """A collection to index.

  Attributes:
    description: JSON-able identity of the collection, kept in index.json.
    video_ids: every video's id, in index order.
    read: (start, stop) -> list of (num_frames, dim) arrays of those videos.
    close: releases files.
  """
  description: Dict[str, Any]
  video_ids: List[str]
  read: Callable[[int, int], List[np.ndarray]]
  close: Callable[[], None] = lambda: None


def hdf5_source(path):
  """Videos of an HDF5 file {video id: (num_frames, dim)}, in its key order."""
  if not os.path.isfile(path):
    raise SearchError(f'--features={path} does not exist: pass an HDF5 file '
                      'of {video id: (frames, dim) features}.')
  try:
    features = h5py.File(path, 'r')
  except OSError as e:
    raise SearchError(f'--features={path} is not a readable HDF5 file '
                      f'({e}).') from e
  ids = list(features.keys())
  if not ids:
    raise SearchError(f'--features={path} holds no videos.')
  read = lambda start, stop: [np.asarray(features[i], np.float32)
                              for i in ids[start:stop]]
  return VideoSource({'features': os.path.abspath(path),
                      'videos': len(ids)}, ids, read, features.close)


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
    raise SearchError(
        f'{source} holds features of shape {frames.shape[-1:]} per frame; '
        f'the export expects ({expected},) (the features it was trained on): '
        'extract the same features, or use an export trained on these.')


# ------------------------------------------------------------------ index --

def _shard_dir(index_dir, shard):
  return os.path.join(index_dir, f'shard-{shard:05d}')


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def _write_json(path, value):
  with open(path + '.tmp', 'w') as f:
    json.dump(value, f, indent=2, sort_keys=True)
  os.replace(path + '.tmp', path)


def _check_export(header, exported, index_dir):
  if header['export_hash'] != exported.content_hash:
    raise SearchError(
        f'{index_dir} was built with another export (content hash '
        f'{header["export_hash"][:12]}, {header["model_name"]}) than '
        f'--export={exported.path} ({exported.content_hash[:12]}): query it '
        'with that export, or index again into a new --out.')


def is_token_array(value):
  """Whether an encoded video array is per-token vectors (videos, tokens, w)."""
  return value.ndim == 3 and np.issubdtype(value.dtype, np.floating)


def _check_token_dtype(token_dtype):
  if token_dtype not in TOKEN_DTYPES:
    raise SearchError(f'--token_dtype={token_dtype} is not one of '
                      f'{", ".join(TOKEN_DTYPES)}.')


def encode_records(tokens, token_dtype):
  """Token arrays -> one structured record per video, as the index stores it.

  Args:
    tokens: flat {key: (videos, tokens, width) float} encodings.
    token_dtype: 'int8' (each token vector scaled by its largest magnitude
      and rounded) or 'float32' (kept; scale 1).

  Returns:
    (videos,) structured array, packed, fields in order: per key the codes
    (tokens, width), KEY:scale (tokens,) float32 and KEY:gram (tokens,
    tokens) float32 of the unquantised vectors. A record is contiguous on
    disk, so a candidate costs one read.
  """
  _check_token_dtype(token_dtype)
  fields = {}
  for key, value in tokens.items():
    value = np.asarray(value, np.float32)
    if token_dtype == 'int8':
      scale = np.abs(value).max(-1) / 127
      codes = np.round(value / np.where(scale > 0, scale, 1)[..., None])
      fields[key] = codes.astype(np.int8)
    else:
      scale = np.ones(value.shape[:2], np.float32)
      fields[key] = value
    fields[key + _SCALE] = scale.astype(np.float32)
    fields[key + _GRAM] = np.einsum('vtd,vsd->vts', value, value)
  records = np.empty(len(next(iter(fields.values()))), np.dtype(
      [(k, v.dtype, v.shape[1:]) for k, v in fields.items()]))
  for key, value in fields.items():
    records[key] = value
  return records


def token_keys(record_dtype):
  """The token array keys of a record dtype (`encode_records`)."""
  return [name for name in record_dtype.names
          if not name.endswith((_SCALE, _GRAM))]


def decode_records(records, keys=None):
  """{key: (videos, tokens, width) float32} of records: codes x scale."""
  return {key: records[key].astype(np.float32) *
               records[key + _SCALE][..., None]
          for key in keys or token_keys(records.dtype)}


def build_index(exported, source, out, chunk_size=1000, batch_size=256,
                progress=True, token_dtype=DEFAULT_TOKEN_DTYPE):
  """Encodes every video of `source` into shards under `out`.

  Shards are written whole (a temporary folder renamed), so a run cut short
  leaves complete shards only, and running the same command again encodes
  just the missing ones. Memory holds one chunk.

  Args:
    exported: an `export.ExportedModel`.
    source: a `VideoSource`.
    out: the index folder.
    chunk_size: videos per shard.
    batch_size: videos per encoder call (split over the local devices).
    progress: show a progress bar.
    token_dtype: storage of the per-token arrays (`TOKEN_DTYPES`).

  Returns:
    The index header (index.json).
  """
  _check_token_dtype(token_dtype)
  header = {'format_version': INDEX_FORMAT_VERSION,
            'export_hash': exported.content_hash,
            'model_name': exported.name, 'source': source.description,
            'num_videos': len(source.video_ids), 'chunk_size': chunk_size,
            'token_dtype': token_dtype}
  header_path = os.path.join(out, INDEX_FILE)
  if os.path.exists(header_path):
    existing = _read_json(header_path)
    _check_format(existing, out)
    _check_export(existing, exported, out)
    existing.pop('complete', None)
    if existing != header:
      raise SearchError(
          f'{out} holds an index of another collection, chunk size or token '
          f'dtype ({existing["source"]}, chunk {existing["chunk_size"]}, '
          f'{existing["token_dtype"]}): index into a new --out, or delete '
          'it.')
  os.makedirs(out, exist_ok=True)
  _write_json(header_path, {**header, 'complete': False})
  evaluator = evaluate.Evaluator(
      exported.model, sharding.data_mesh(jax.local_devices()),
      min(batch_size, chunk_size))
  max_frames = exported.manifest['max_frames']
  feature_dim = exported.manifest['feature_dim']
  num_videos = len(source.video_ids)
  bar = tqdm.tqdm(total=num_videos, unit='video', disable=not progress,
                  desc='Indexing')
  try:
    for shard, start in enumerate(range(0, num_videos, chunk_size)):
      stop = min(start + chunk_size, num_videos)
      if not os.path.isdir(_shard_dir(out, shard)):
        _write_shard(out, shard, source, start, stop, evaluator, exported,
                     max_frames, feature_dim, token_dtype)
      bar.update(stop - start)
  finally:
    bar.close()
    source.close()
  _write_json(header_path, {**header, 'complete': True})
  return header


def _write_shard(out, shard, source, start, stop, evaluator, exported,
                 max_frames, feature_dim, token_dtype):
  """Encodes videos [start, stop) and writes them as one shard."""
  videos = source.read(start, stop)
  for video_id, frames in zip(source.video_ids[start:stop], videos):
    _check_feature_dim(frames, feature_dim,
                       f'Video {video_id!r} of {source.description}')
  selected = [select_frames(frames, max_frames) for frames in videos]
  batch = {'frames': np.stack([f for f, _ in selected]),
           'frame_mask': np.stack([m for _, m in selected])}
  encoded = evaluator.encode_videos(exported.variables, [batch])
  staging = _shard_dir(out, shard) + '.partial'
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(staging)
  flat = flax.traverse_util.flatten_dict(jax.device_get(encoded), sep='/')
  tokens = {k: v for k, v in flat.items() if is_token_array(v)}
  if tokens:
    np.save(os.path.join(staging, RECORDS_FILE),
            encode_records(tokens, token_dtype))
  for key, value in flat.items():
    if key not in tokens:
      np.save(os.path.join(staging, f'{_ENCODED_PREFIX}{key}.npy'), value)
  np.save(os.path.join(staging, NUM_FRAMES_FILE),
          np.array([len(f) for f in videos], np.int32))
  _write_json(os.path.join(staging, IDS_FILE),
              source.video_ids[start:stop])
  os.rename(staging, _shard_dir(out, shard))


def _check_format(header, index_dir):
  version = header.get('format_version')
  if version != INDEX_FORMAT_VERSION:
    raise SearchError(
        f'{index_dir} has index format {version}, this code reads '
        f'{INDEX_FORMAT_VERSION}: index again with python -m hgr_jax.search '
        'index into a new --out.')


def aligned_empty(shape, dtype, alignment=64):
  """An uninitialised array whose data starts on an `alignment` boundary.

  JAX on CPU uses such a NumPy array in place; it copies any other (~30 ms
  for the 82 MB of 1,000 float32 HGR candidates).
  """
  dtype = np.dtype(dtype)
  size = math.prod(shape) * dtype.itemsize
  raw = np.empty(size + alignment, np.uint8)
  start = -raw.ctypes.data % alignment
  return raw[start:start + size].view(dtype).reshape(shape)


class RowBuffers:
  """Per row, the byte views `os.preadv` fills of a list of arrays.

  Args:
    arrays: C-contiguous arrays with the same leading (rows,) axis.
  """

  def __init__(self, arrays):
    self.arrays = arrays
    views = [a.reshape(len(a), -1).view(np.uint8) for a in arrays]
    self.rows = [[view[i] for view in views] for i in range(len(arrays[0]))]


class Index:
  """A built index, read shard by shard or row by row.

  Args:
    path: the index folder.
    exported: the export it must have been built with.
  """

  def __init__(self, path, exported):
    header_path = os.path.join(path, INDEX_FILE)
    if not os.path.exists(header_path):
      raise SearchError(f'--index={path} is not an index (no {INDEX_FILE}): '
                        'build one with python -m hgr_jax.search index.')
    self.header = _read_json(header_path)
    _check_format(self.header, path)
    _check_export(self.header, exported, path)
    num_shards = -(-self.header['num_videos'] // self.header['chunk_size'])
    if not self.header.get('complete'):
      done = sum(os.path.isdir(_shard_dir(path, s))
                 for s in range(num_shards))
      raise SearchError(
          f'{path} is incomplete ({done} of {num_shards} shards): run the '
          'same index command again to finish it.')
    self.path = path
    self.shard_dirs = [_shard_dir(path, s) for s in range(num_shards)]
    self.video_ids = [i for d in self.shard_dirs
                      for i in _read_json(os.path.join(d, IDS_FILE))]
    self.chunk_size = self.header['chunk_size']
    self._layouts = {}
    self._num_frames = None
    names = os.listdir(self.shard_dirs[0])
    self.column_keys = sorted(
        name[len(_ENCODED_PREFIX):-len('.npy')] for name in names
        if name.startswith(_ENCODED_PREFIX))
    self.record_dtype = (self._layout(0, RECORDS_FILE)[1]
                         if RECORDS_FILE in names else None)
    self.token_keys = (token_keys(self.record_dtype)
                       if self.record_dtype else [])
    self.keys = sorted(self.column_keys + self.token_keys)

  def __len__(self):
    return len(self.video_ids)

  def _path(self, shard, name):
    return os.path.join(self.shard_dirs[shard], name)

  def _layout(self, shard, name):
    """(byte offset of row 0, row dtype) of a shard's .npy file."""
    if (shard, name) not in self._layouts:
      array = np.load(self._path(shard, name), mmap_mode='r')
      if not array.flags.c_contiguous:
        raise SearchError(f'{array.filename} is not stored in C order: '
                          'index again with python -m hgr_jax.search.')
      row = np.dtype((array.dtype, array.shape[1:]))
      self._layouts[shard, name] = (array.offset, row)
    return self._layouts[shard, name]

  def shard(self, shard, keys=None):
    """The encoded videos of one shard: dict of float arrays in memory.

    Read whole rather than memory-mapped, so that a pass over the index
    holds one shard at a time, not every page it has touched.
    """
    keys = keys or self.keys
    tokens = [k for k in keys if k in self.token_keys]
    flat = decode_records(np.load(self._path(shard, RECORDS_FILE)),
                          tokens) if tokens else {}
    for key in keys:
      if key not in tokens:
        flat[key] = np.load(self._path(shard, _ENCODED_PREFIX + key + '.npy'))
    return flax.traverse_util.unflatten_dict(flat, sep='/')

  def chunks(self):
    """Every shard's encoded videos, in index order."""
    for shard in range(len(self.shard_dirs)):
      yield self.shard(shard)

  def column(self, key):
    """One encoded array of every video, concatenated: (videos, ...)."""
    return np.concatenate([
        flax.traverse_util.flatten_dict(self.shard(s, [key]), sep='/')[key]
        for s in range(len(self.shard_dirs))])

  def read_rows(self, rows, name, outs):
    """Reads the rows `rows` of every shard's file `name` into `outs`.

    One `os.preadv` per row fills row i of each array of `outs` in turn
    (a record's fields are contiguous on disk, so each gets its own array),
    and no page of the index is mapped: memory holds the candidates only.

    Args:
      rows: (n,) index rows.
      name: the file in each shard (RECORDS_FILE or encoded.KEY.npy).
      outs: C-contiguous arrays with a leading (>= n) axis whose rows
        together take one file row's bytes, in file order; or a `RowBuffers`
        of them, made once for arrays read into query after query.
    """
    if isinstance(outs, RowBuffers):
      buffers = outs.rows
    else:
      buffers = RowBuffers(outs).rows
    rows = np.asarray(rows)
    shards, offsets = np.divmod(rows, self.chunk_size)
    for shard in np.unique(shards):
      start, row = self._layout(int(shard), name)
      descriptor = os.open(self._path(int(shard), name), os.O_RDONLY)
      try:
        for i in np.flatnonzero(shards == shard):
          os.preadv(descriptor, buffers[i],
                    start + int(offsets[i]) * row.itemsize)
      finally:
        os.close(descriptor)

  def gather(self, rows, keys=None):
    """The encoded videos at index rows `rows` (in that order), float."""
    keys = keys or self.keys
    flat = {}
    if any(k in self.token_keys for k in keys):
      records = np.empty(len(rows), self.record_dtype)
      self.read_rows(rows, RECORDS_FILE, [records])
      flat.update(decode_records(
          records, [k for k in keys if k in self.token_keys]))
    for key in keys:
      if key not in flat:
        _, row = self._layout(0, _ENCODED_PREFIX + key + '.npy')
        out = np.empty((len(rows),) + row.shape, row.base)
        self.read_rows(rows, _ENCODED_PREFIX + key + '.npy', [out])
        flat[key] = out
    return flax.traverse_util.unflatten_dict(flat, sep='/')

  def num_frames(self, rows):
    """Original frame counts of the videos at `rows`."""
    if self._num_frames is None:
      self._num_frames = np.concatenate([
          np.load(os.path.join(d, NUM_FRAMES_FILE)) for d in self.shard_dirs])
    return self._num_frames[np.asarray(rows)]


# ---------------------------------------------------------------- queries --

@dataclasses.dataclass
class Query:
  """An encoded-ready query.

  Attributes:
    text: the query as given.
    arrays: caption arrays of `input_pipeline.CAPTION_KEYS`, no batch axis.
    phrases: token kind ('verb', 'noun': role graph nodes; 'word': token
      positions) -> text of each slot ('' if empty).
    warnings: things the user should know (unknown words, no verb).
  """
  text: str
  arrays: Dict[str, np.ndarray]
  phrases: Dict[str, List[str]]
  warnings: List[str]


def query_words(text):
  """The query's words, normalised as the release's captions."""
  return caption_text.normalise(text).split()


class QueryEncoder:
  """Turns query strings into caption arrays the export's model encodes.

  Args:
    exported: an `export.ExportedModel`.
    nlp: a loaded spaCy pipeline; loaded on first use if the model needs
      role graphs.
  """

  def __init__(self, exported, nlp=None):
    self.manifest = exported.manifest
    self.tokenizer = exported.tokenizer
    self.hooks = hooks_for(exported.name)
    self._nlp = nlp

  def _graphs(self, sentences):
    if not self.hooks.uses_role_graph:
      return [[{'ROOT': {'role': 'ROOT', 'spans': [], 'words': []}}, []]
              for _ in sentences]
    if self._nlp is None:
      try:
        self._nlp = caption_parser.load_pipeline()
      except (ImportError, OSError) as e:
        raise SearchError(str(e).split('\n')[0]) from e
    graphs = caption_parser.parse_captions(sentences, self._nlp,
                                           log_every=10**9)
    return [graphs[s] for s in sentences]

  def encode(self, texts: Sequence[str]) -> List[Query]:
    """Queries of `texts`.

    Raises:
      SearchError: a query is empty or has no known word.
    """
    words = [query_words(text) for text in texts]
    for text, query in zip(texts, words):
      if not query:
        raise SearchError(f'Query {text!r} is empty: give a sentence, e.g. '
                          '--query="a man throws a ball to a dog".')
    sentences = [' '.join(w) for w in words]
    queries = []
    for text, sentence, graph in zip(texts, sentences,
                                     self._graphs(sentences)):
      queries.append(self._encode_one(text, sentence, graph))
    return queries

  def _encode_one(self, text, sentence, graph):
    words = sentence.split()
    ids, positions = self.tokenizer.encode_words(words)
    if positions is None:
      positions = [[i] for i in range(len(words))]
    # CLIP's byte-level BPE has no unknown token (unk_id None).
    unk_id = getattr(self.tokenizer, 'unk_id', role_graph.UNK_ID)
    unknown = [w for w, p in zip(words, positions)
               if all(ids[i] == unk_id for i in p)]
    if len(unknown) == len(words):
      raise SearchError(f'Query {text!r}: no word of it is in the model\'s '
                        f'vocabulary (unknown: {", ".join(unknown)}).')
    warnings = []
    if unknown:
      warnings.append(f'unknown words ignored: {", ".join(unknown)}')
    manifest = self.manifest
    arrays = role_graph.encode_caption(
        sentence, graph, self.tokenizer, manifest['max_words'],
        manifest['num_verbs'], manifest['num_nouns'])
    if self.hooks.uses_role_graph and not arrays['verb_masks'].any():
      warnings.append('no verb found: matched on its noun phrases only')
    token_word = {t: w for w, p in enumerate(positions) for t in p}
    phrases = {
        kind: [' '.join(dict.fromkeys(
            words[token_word[t]] for t in np.flatnonzero(mask)))
               for mask in arrays[f'{kind}_masks']]
        for kind in ('verb', 'noun')}
    # Unknown words are left out of --explain, as the warning says.
    phrases['word'] = [
        words[token_word[t]] if t < arrays['length'] and
        words[token_word[t]] not in unknown else ''
        for t in range(manifest['max_words'])]
    return Query(text, arrays, phrases, warnings)


def stack_queries(queries):
  return {k: np.stack([q.arrays[k] for q in queries])
          for k in input_pipeline.CAPTION_KEYS}


# ----------------------------------------------------------------- search --

@dataclasses.dataclass
class Hit:
  """One result: index row, video id, its score at every level and, after
  `Searcher.explain`, its best video tokens per query token kind and slot."""
  row: int
  video_id: str
  scores: Dict[str, float]
  attention: Dict[str, List[List[tuple]]] = dataclasses.field(
      default_factory=dict)


# Caption arrays whose last axis is the words (input_pipeline's layout).
_WORD_AXIS_KEYS = ('token_ids', 'verb_masks', 'noun_masks')


def cut_words(captions, max_words):
  """Caption arrays cut to the longest caption's length, rounded up to a
  power of two (at least 8, at most `max_words`), so the encoder runs only
  the steps a query has and compiles at most a few shapes."""
  longest = int(np.max(captions['length']))
  words = min(max_words, max(8, 1 << (longest - 1).bit_length()))
  return {k: v[..., :words] if k in _WORD_AXIS_KEYS else v
          for k, v in captions.items()}


def _pad_to(tree, rows):
  return jax.tree.map(lambda x: np.pad(
      x, [(0, rows - x.shape[0])] + [(0, 0)] * (x.ndim - 1)), tree)


@functools.partial(jax.jit, static_argnums=2)
def _best_cosines(videos, queries, count):
  """The `count` best cosines of each query, best first.

  Args:
    videos: (videos, width) unit vectors.
    queries: (queries, width).
    count: cosines kept per query.

  Returns:
    (queries, count) cosines and their video rows; on ties the lower row
    first (`lax.top_k`).
  """
  return jax.lax.top_k(
      jnp.einsum('qd,vd->qv', layers.l2_normalize(queries), videos), count)


class Searcher:
  """Ranks an index's videos for encoded queries.

  The first stage holds the global video embeddings of the whole index
  in memory (videos x width floats); everything else is read per shard or
  per candidate.

  Args:
    exported: an `export.ExportedModel`.
    index: an `Index` built with it.
    query_batch: queries encoded per call (fixed, so it compiles once), and
      scored per pass over the index by exhaustive search.
  """

  def __init__(self, exported, index, query_batch=64):
    self.exported, self.index = exported, index
    self.hooks = hooks_for(exported.name)
    self.query_batch = query_batch
    self._global = None
    if self.hooks.global_keys:
      self._global = layers.l2_normalize(jnp.asarray(
          index.column(self.hooks.global_keys[0])))
    model = exported.model

    def fused(videos, queries, variables):
      return model.apply(variables, videos, queries,
                         method=model.scores)['fused']
    self._fused = fused
    self._rerank = None
    if self.hooks.rerank and index.record_dtype is not None:
      self._rerank = jax.jit(functools.partial(self.hooks.rerank, model))
      # Small per-video arrays (masks): held, 20 bytes a video for HGR.
      self._columns = {key: index.column(key)
                       for key in self.hooks.rerank_columns}
    self._buffers = None

  def encode(self, queries: Sequence[Query]):
    """Encoded queries (dict of arrays with a leading (queries,) axis)."""
    outputs = []
    for start in range(0, len(queries), self.query_batch):
      part = stack_queries(queries[start:start + self.query_batch])
      size = len(part['length'])
      if self.hooks.cut_queries:
        part = cut_words(part, self.exported.manifest['max_words'])
      encoded = self.exported.encode_text(_pad_to(part, self.query_batch))
      outputs.append(jax.tree.map(lambda x, s=size: np.asarray(x[:s]),
                                  encoded))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)

  def best_global(self, text, candidates):
    """(queries, candidates) rows of the best global cosines, best first,
    and those cosines."""
    queries = text[self.hooks.global_keys[1]]
    candidates = min(candidates, len(self.index))
    rows, cosines = [], []
    # query_batch queries per product: (queries, videos) cosines are held.
    for start in range(0, len(queries), self.query_batch):
      best, best_rows = _best_cosines(
          self._global, queries[start:start + self.query_batch], candidates)
      rows.append(np.asarray(best_rows))
      cosines.append(np.asarray(best))
    return np.concatenate(rows), np.concatenate(cosines)

  def first_stage(self, text, candidates):
    """(queries, candidates) rows of the best global cosines, best first."""
    return self.best_global(text, candidates)[0]

  def _candidate_buffers(self, count):
    """Per-field arrays one `read_rows` of `count` records fills, and the
    float32 codes and column arrays the re-rank reads, all aligned (read by
    JAX in place) and kept from query to query."""
    if self._buffers is None or len(self._buffers[0].rows) != count:
      dtype = self.index.record_dtype
      fields = [aligned_empty((count,) + dtype[name].shape,
                              dtype[name].base) for name in dtype.names]
      floats = {key: aligned_empty((count,) + dtype[key].shape, np.float32)
                for key in self.index.token_keys
                if dtype[key].base != np.float32}
      columns = {key: aligned_empty((count,) + value.shape[1:], value.dtype)
                 for key, value in self._columns.items()}
      self._buffers = RowBuffers(fields), floats, columns
    return self._buffers

  def read_candidates(self, rows):
    """The re-rank's inputs for candidates `rows`: (tokens, columns).

    Buffers are reused: the result is valid until the next call.
    """
    row_buffers, floats, columns = self._candidate_buffers(len(rows))
    self.index.read_rows(rows, RECORDS_FILE, row_buffers)
    fields = row_buffers.arrays
    by_name = dict(zip(self.index.record_dtype.names, fields))
    tokens = {}
    for key in self.index.token_keys:
      codes = by_name[key]
      if key in floats:
        # NumPy's int8 -> float32 cast is vectorised; XLA's was 10x slower.
        np.copyto(floats[key], codes, casting='unsafe')
        codes = floats[key]
      tokens[key] = (codes, by_name[key + _SCALE], by_name[key + _GRAM])
    for key, column in self._columns.items():
      np.take(column, rows, axis=0, out=columns[key])
    return tokens, columns

  def score_candidates(self, candidates, text_one, global_cosines):
    """The model's re-rank of `read_candidates`' output for one query:
    dict of (candidates,) scores per level."""
    tokens, columns = candidates
    scores = self._rerank(tokens, columns, text_one, global_cosines)
    return {k: np.asarray(v) for k, v in scores.items()}

  def _score_rows(self, rows, text_one, global_cosines=None):
    """Every level's scores of the videos at `rows` for one encoded query.

    With the model's re-rank hook and the first stage's cosines, from the
    index's records; otherwise the model's `scores` of the decoded videos.
    """
    if self._rerank is not None and global_cosines is not None:
      return self.score_candidates(self.read_candidates(rows), text_one,
                                   global_cosines)
    scores = self.exported.scores(self.index.gather(rows),
                                  jax.tree.map(lambda x: x[None], text_one))
    return {k: np.asarray(v)[:, 0] for k, v in scores.items()}

  def search(self, text, k, candidates=DEFAULT_CANDIDATES):
    """The k best videos of each encoded query.

    Args:
      text: encoded queries (`encode`).
      k: results per query.
      candidates: first-stage videos re-ranked by the full score; 0 (or a
        model without a global score) scores every video.

    Returns:
      A list per query of k `Hit`s, best first.
    """
    num_queries = len(jax.tree.leaves(text)[0])
    batch = self.query_batch
    k = min(k, len(self.index))
    two_stage = bool(candidates) and self._global is not None
    global_cosines = [None] * num_queries
    if two_stage:
      candidates = max(min(candidates, len(self.index)), k)
      pools, global_cosines = self.best_global(text, candidates)
    else:
      # query_batch queries per pass, so that the (chunk, queries, frames,
      # phrases) intermediates follow the chunk, not the query count.
      pools = np.concatenate([retrieval.streaming_top_k(
          self._fused, jax.tree.map(lambda x, s=start: x[s:s + batch], text),
          self.index.chunks(), k, self.index.chunk_size,
          (self.exported.variables,)).indices
                              for start in range(0, num_queries, batch)])
    results = []
    for q in range(num_queries):
      text_one = jax.tree.map(lambda x, q=q: x[q], text)
      pool = pools[q]
      scores = self._score_rows(pool, text_one, global_cosines[q])
      # Stable: on equal scores the better first-stage (or lower) row wins.
      best = np.argsort(-scores['fused'], kind='stable')[:k]
      results.append([
          Hit(int(pool[i]), self.index.video_ids[pool[i]],
              {level: float(s[i]) for level, s in scores.items()})
          for i in best])
    return results

  def explain(self, hits, text_one, top=_EXPLAIN_TOKENS):
    """Adds to each hit, per query token kind and slot, its best video tokens.

    Each entry is (video token, weight), best first: frames numbered in the
    original video (before frame selection) or clips, weighted by attention
    or cosine as the model's `Alignment` says.
    """
    if not hits or not self.hooks.alignments:
      return
    rows = [hit.row for hit in hits]
    videos = self.index.gather(rows)
    positions = [frame_positions(n, self.exported.manifest['max_frames'])
                 for n in self.index.num_frames(rows)]
    for kind, alignment in self.hooks.alignments.items():
      tokens = videos[alignment.video_key]
      valid = (videos['frame_mask'] if alignment.unit == 'frame'
               else np.ones(tokens.shape[:2], bool))
      weights = np.asarray(_alignment_weights(
          tokens, valid, text_one[alignment.text_key], alignment,
          getattr(self.exported.model, 'attention_sigma', None)))
      for hit, hit_weights, hit_valid, position in zip(hits, weights, valid,
                                                       positions):
        # Frames keep the original video's index; clips, like the learned
        # phrase slots they are printed with, count from 1.
        number = position if alignment.unit == 'frame' else np.arange(
            1, len(hit_valid) + 1)
        hit.attention[kind] = [
            [(int(number[t]), float(w[t]))
             for t in np.argsort(-w, kind='stable')[:top] if hit_valid[t]]
            for w in hit_weights]


def _alignment_weights(video_tokens, valid, text_tokens, alignment, sigma):
  """(videos, slots, tokens) weight of each video token for each query slot.

  Args:
    video_tokens: (videos, tokens, width); valid: (videos, tokens) bool.
    text_tokens: (slots, width), one query.
    alignment: an `Alignment`.
    sigma: HGR's attention temperature (used when `alignment.attention`).
  """
  if alignment.attention:
    return matching.phrase_frame_attention(
        video_tokens, valid, text_tokens[None], sigma)[:, 0]
  cosines = jnp.einsum('vtd,sd->vst', layers.l2_normalize(video_tokens),
                       layers.l2_normalize(text_tokens))
  return jnp.where(valid[:, None, :], cosines, -jnp.inf)


def format_results(query, hits, explain=False, hooks=None):
  """A printable table of a query's hits (and alignments with `explain`).

  `hooks` (the model's `ModelHooks`) names the unit of each explained kind.
  """
  alignments = hooks.alignments if hooks else {}
  levels = [level for level in hits[0].scores if level != 'fused']
  lines = [f'Query: {query.text}']
  lines += [f'  warning: {w}' for w in query.warnings]
  id_width = max(8, *(len(h.video_id) for h in hits))
  lines.append(f'{"rank":>4}  {"video":<{id_width}}  {"fused":>7}' +
               ''.join(f'  {level:>{max(7, len(level))}}'
                       for level in levels))
  for rank, hit in enumerate(hits, 1):
    lines.append(
        f'{rank:>4}  {hit.video_id:<{id_width}}  {hit.scores["fused"]:7.4f}' +
        ''.join(f'  {hit.scores[level]:>{max(7, len(level))}.4f}'
                for level in levels))
    if explain:
      for kind, slots in hit.attention.items():
        unit = alignments[kind].unit if kind in alignments else 'frame'
        labels = query.phrases.get(kind) or [
            str(i + 1) for i in range(len(slots))]
        for label, tokens in zip(labels, slots):
          if label and kind in query.phrases:
            label = f'"{label}"'
          if label:
            listed = ', '.join(f'{t} ({w:.2f})' for t, w in tokens)
            lines.append(f'        {kind} {label}: {unit}s {listed}')
  return '\n'.join(lines)


# ----------------------------------------------------------- command line --

FLAGS = flags.FLAGS


def _define_flags():
  config_flags.DEFINE_config_file(
      'config', None, 'index: the experiment config whose --split to index.',
      lock_config=True)
  flags.DEFINE_string('export', None, 'Export directory (python -m '
                      'hgr_jax.export).')
  flags.DEFINE_string('features', None, 'index: HDF5 file {video id: (frames, '
                      'dim)} of the videos to index.')
  flags.DEFINE_string('split', 'test', 'index with --config: the split to '
                      'index.')
  flags.DEFINE_string('out', None, 'index: the index folder to write.')
  flags.DEFINE_integer('chunk_size', 1000, 'index: videos per shard (memory '
                       'holds one).')
  flags.DEFINE_integer('batch_size', 256, 'index: videos per encoder call.')
  flags.DEFINE_enum('token_dtype', DEFAULT_TOKEN_DTYPE, TOKEN_DTYPES,
                    'index: storage of the frame (clip) vectors; int8 reads '
                    'a quarter of float32\'s bytes per candidate.')
  flags.DEFINE_string('index', None, 'query: the index folder.')
  flags.DEFINE_string('query', None, 'query: the sentence to search for.')
  flags.DEFINE_string('queries_file', None, 'query: a text file, one query '
                      'per line.')
  flags.DEFINE_integer('k', 10, 'query: results per query.')
  flags.DEFINE_integer('candidates', DEFAULT_CANDIDATES,
                       'query: videos the global first stage keeps for the '
                       'full score; 0 scores every video (exhaustive).')
  flags.DEFINE_bool('explain', False, 'query: print, in every result, the '
                    'frames each verb and noun phrase attends to most (HGR, '
                    'HANet), or each word\'s best frames and each phrase\'s '
                    'best clips (HCMI).')


def _index_command():
  if bool(FLAGS.features) == bool(FLAGS['config'].value):
    raise SearchError('index needs exactly one of --features=FILE.hdf5 or '
                      '--config=CONFIG (with --split).')
  if not FLAGS.out:
    raise SearchError('index needs --out=INDEX, the folder to write.')
  exported = export_lib.load(FLAGS.export)
  source = (hdf5_source(FLAGS.features) if FLAGS.features
            else dataset_source(FLAGS['config'].value, FLAGS.split))
  header = build_index(exported, source, FLAGS.out, FLAGS.chunk_size,
                       FLAGS.batch_size, token_dtype=FLAGS.token_dtype)
  print(f'Indexed {header["num_videos"]} videos into {FLAGS.out}.')


def _query_command():
  if not FLAGS.index:
    raise SearchError('query needs --index=INDEX (python -m hgr_jax.search '
                      'index ... --out=INDEX).')
  if bool(FLAGS.query is not None) == bool(FLAGS.queries_file):
    raise SearchError('query needs exactly one of --query="..." or '
                      '--queries_file=FILE.')
  if FLAGS.queries_file:
    with open(FLAGS.queries_file) as f:
      texts = [line.strip() for line in f if line.strip()]
  else:
    texts = [FLAGS.query]
  exported = export_lib.load(FLAGS.export)
  index = Index(FLAGS.index, exported)
  queries = QueryEncoder(exported).encode(texts)
  searcher = Searcher(exported, index)
  text = searcher.encode(queries)
  results = searcher.search(text, FLAGS.k, FLAGS.candidates)
  for q, (query, hits) in enumerate(zip(queries, results)):
    if FLAGS.explain:
      searcher.explain(hits, jax.tree.map(lambda x, q=q: x[q], text))
    print(format_results(query, hits, FLAGS.explain, searcher.hooks))
    print()


def main(argv):
  commands = {'index': _index_command, 'query': _query_command}
  if len(argv) != 2 or argv[1] not in commands:
    raise app.UsageError('Usage: python -m hgr_jax.search index|query '
                         '--export=EXPORT ...')
  if not FLAGS.export:
    sys.exit('Error: --export=EXPORT is required (python -m hgr_jax.export '
             'writes one).')
  logging.set_verbosity(logging.WARNING)
  try:
    commands[argv[1]]()
  except (SearchError, export_lib.ExportError,
          release_layout.ReleaseError) as e:
    sys.exit(f'Error: {e}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
