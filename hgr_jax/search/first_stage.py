"""The first stage of two-stage search: the videos whose global vectors are
nearest a query's, by exact scan or by a FAISS approximate index.

Both return the same thing: per query, `count` index rows ordered by their
exact global cosine (best first; ties: lower row first) and those cosines,
which the re-rank uses as the model's global level. The ANN only chooses
which rows: their cosines are computed from the global vectors read from
the index.

The ANN is a FAISS IVF-PQ index (inner product on L2-normalised vectors):
`nlist` k-means lists, each vector stored as `m` PQ codes of `nbits` bits;
a query scans the `nprobe` lists nearest it, and an int8 copy of the
global vectors re-ranks what it proposes. It lives in INDEX/ann/:

  ann/trained.faiss       the trained, empty index
  ann/part-00000.faiss    one shard's vectors added to it (while building)
  ann/ann.faiss, ann.json the merged index and its settings

Built from the index's own shards with bounded memory (a sample of
`train_size` vectors, then one shard at a time), and resumable: each file
is written whole (a temporary file renamed) and skipped when present.
"""

import functools
import math
import os

import faiss
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from hgr_jax.models import layers
from hgr_jax.search import index_format as fmt

FIRST_STAGES = ('ann', 'exact')
ANN_DIR = 'ann'
ANN_FILE = 'ann.faiss'
ANN_HEADER = 'ann.json'
_TRAINED_FILE = 'trained.faiss'
# Lists scanned per query as a share of all lists, and the ANN's candidates
# per candidate kept (their exact cosines, from the global vectors read from
# the shards, pick the kept ones). Text queries sit apart from the video
# vectors the lists are clustered on, so a query's nearest 1,000 videos
# spread over many lists: at 100,000 videos (1,024 lists) an eighth of them
# held 90% of the exact top 1,000, a quarter 97% (with 4x refining), which
# kept the true video in the pool as often as the exact scan (69.8% against
# 70.0%; refining 2x: 68.8%). Ours, from docs/search.md.
DEFAULT_NPROBE_SHARE = 1 / 4
DEFAULT_REFINE = 4


def default_nprobe(nlist):
  """Lists scanned per query by default (`DEFAULT_NPROBE_SHARE`)."""
  return max(1, round(nlist * DEFAULT_NPROBE_SHARE))


def _unit(x):
  x = np.asarray(x, np.float32)
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-10)


def ann_settings(num_videos, width, train_size=None):
  """The IVF-PQ shape for a collection.

  Args:
    num_videos: vectors indexed.
    width: their dimension.
    train_size: vectors k-means trains on; None: 32 per list (FAISS
      advises 30 to 256), at least 65,536 (all, in a smaller collection).

  Returns:
    dict: nlist (a power of two near 4 sqrt(videos), as FAISS advises,
    at most one per 32 training vectors), m (sub-quantizers: width / 8 dims
    each, or the nearest divisor of width), nbits (8, fewer when there are
    fewer than 256 training vectors) and train_size.
  """
  nlist = 2**max(0, round(math.log2(max(1.0, 4 * math.sqrt(num_videos)))))
  if train_size is None:
    train_size = max(32 * nlist, 65_536)
  train_size = min(train_size, num_videos)
  nlist = min(nlist, 2**int(math.log2(max(1, train_size // 32))))
  m = max(d for d in range(1, max(1, width // 8) + 1) if width % d == 0)
  nbits = min(8, max(1, int(math.log2(train_size))))
  return {'nlist': nlist, 'm': m, 'nbits': nbits, 'train_size': train_size}


def _write_index(index, path):
  faiss.write_index(index, path + '.tmp')
  os.replace(path + '.tmp', path)


def _sample(shard_dirs, key, size, num_videos, chunk_size):
  """(size, width) unit global vectors at random rows, read shard by shard."""
  rows = np.sort(np.random.default_rng(0).choice(num_videos, size,
                                                 replace=False))
  parts = []
  for shard, shard_path in enumerate(shard_dirs):
    chosen = rows[(rows >= shard * chunk_size) &
                  (rows < (shard + 1) * chunk_size)] - shard * chunk_size
    if len(chosen):
      column = np.load(os.path.join(shard_path, fmt.encoded_file(key)),
                       mmap_mode='r')
      parts.append(_unit(column[chosen]))
  return np.concatenate(parts)


def build_ann(index_dir, key, train_size=None, progress=True):
  """Builds (or finishes) the IVF-PQ first stage of a complete index.

  Args:
    index_dir: the index folder (its shards written).
    key: the encoded global video vector (the model's `global_keys[0]`).
    train_size: see `ann_settings`.
    progress: show a progress bar.

  Returns:
    The ANN header (ann.json).
  """
  header = fmt.read_json(os.path.join(index_dir, fmt.INDEX_FILE))
  folder = os.path.join(index_dir, ANN_DIR)
  header_path = os.path.join(folder, ANN_HEADER)
  if os.path.exists(header_path):
    return fmt.read_json(header_path)
  os.makedirs(folder, exist_ok=True)
  num_videos, chunk_size = header['num_videos'], header['chunk_size']
  shard_dirs = [fmt.shard_dir(index_dir, s)
                for s in range(-(-num_videos // chunk_size))]
  width = np.load(os.path.join(shard_dirs[0], fmt.encoded_file(key)),
                  mmap_mode='r').shape[-1]
  settings = ann_settings(num_videos, width, train_size)
  trained_path = os.path.join(folder, _TRAINED_FILE)
  if not os.path.exists(trained_path):
    sample = _sample(shard_dirs, key, settings['train_size'],
                     num_videos, chunk_size)
    trained = faiss.index_factory(
        width, f'IVF{settings["nlist"]},PQ{settings["m"]}x'
        f'{settings["nbits"]}', faiss.METRIC_INNER_PRODUCT)
    # Our sizes keep k-means at one vector per centroid or more; FAISS's
    # warning below 39 is for quality, which small collections trade.
    coarse = faiss.extract_index_ivf(trained).cp
    coarse.min_points_per_centroid = 1
    # 10 iterations, not 25: the lists only need to gather neighbours, and
    # k-means of 4,096 lists is most of the build at 1,000,000 videos.
    coarse.niter = 10
    trained.pq.cp.min_points_per_centroid = 1
    # Polysemous codes serve Hamming pre-filtering, which search does not
    # use; their training is most of the build time at 20,000 videos.
    trained.do_polysemous_training = False
    trained.train(sample)
    del sample
    _write_index(trained, trained_path)
  trained = faiss.read_index(trained_path)
  for shard, shard_path in enumerate(tqdm.tqdm(
      shard_dirs, desc='ANN', unit='shard', disable=not progress)):
    part_path = os.path.join(folder, f'part-{shard:05d}.faiss')
    if not os.path.exists(part_path):
      part = faiss.clone_index(trained)
      vectors = np.load(os.path.join(shard_path, fmt.encoded_file(key)))
      part.add_with_ids(_unit(vectors), shard * chunk_size +
                        np.arange(len(vectors), dtype=np.int64))
      _write_index(part, part_path)
  merged = trained
  for shard in range(len(shard_dirs)):
    merged.merge_from(faiss.read_index(
        os.path.join(folder, f'part-{shard:05d}.faiss')), 0)
  _write_index(merged, os.path.join(folder, ANN_FILE))
  ann_header = {**settings, 'key': key, 'num_videos': num_videos,
                'library': f'faiss {faiss.__version__}'}
  fmt.write_json(header_path, ann_header)
  for shard in range(len(shard_dirs)):
    os.remove(os.path.join(folder, f'part-{shard:05d}.faiss'))
  os.remove(trained_path)
  return ann_header


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


class ExactFirstStage:
  """Every global vector held in memory as one float32 matrix, scanned by
  one jitted product and `lax.top_k` per batch of queries.

  Args:
    index: a `reader.Index`.
    key: the encoded global video vector.
  """

  def __init__(self, index, key):
    self.num_videos = len(index)
    # Normalised in place before JAX takes it: one copy of the matrix, not
    # three (1.5 GB each at 1,000,000 x 384).
    videos = np.asarray(index.column(key), np.float32)
    videos /= np.maximum(np.linalg.norm(videos, axis=-1, keepdims=True),
                         1e-10)
    self._videos = jnp.asarray(videos)

  def search(self, queries, count):
    """(queries, count) rows and cosines, best first; `count` at most the
    collection's size."""
    cosines, rows = _best_cosines(self._videos, queries, count)
    return np.asarray(rows), np.asarray(cosines)


def _int8(vectors):
  """Unit vectors as int8 codes and a float32 scale each (code x scale)."""
  scale = np.maximum(np.abs(vectors).max(-1), 1e-12) / 127
  return np.round(vectors / scale[:, None]).astype(np.int8), scale.astype(
      np.float32)


class AnnFirstStage:
  """The index's FAISS IVF-PQ picks `refine` x N rows; an int8 copy of the
  global vectors held in memory keeps the best N of them; their float32
  vectors, read from the shards, give the exact cosines.

  Memory: the PQ codes (width/8 bytes and an 8-byte id a video) and the
  int8 copy (width + 4 bytes a video): 0.44 GB at 1,000,000 x 384.

  Args:
    index: a `reader.Index`.
    key: the encoded global video vector.
    nprobe: lists scanned per query; 0: the default (`default_nprobe`).
    refine: the ANN's candidates per one kept (`search`); 0: the default.
  """

  def __init__(self, index, key, nprobe=0, refine=0):
    folder = os.path.join(index.path, ANN_DIR)
    if not os.path.exists(os.path.join(folder, ANN_HEADER)):
      raise fmt.SearchError(
          f'{index.path} has no ANN first stage (built with --noann, or '
          'interrupted): run the same index command again to add it, or '
          'query with --first_stage=exact.')
    self.header = fmt.read_json(os.path.join(folder, ANN_HEADER))
    if self.header['key'] != key:
      raise fmt.SearchError(
          f'{index.path}: its ANN holds {self.header["key"]} vectors, the '
          f'model\'s global score reads {key}: index again into a new '
          '--out.')
    self.index, self.key = index, key
    self.num_videos = len(index)
    self._ann = faiss.read_index(os.path.join(folder, ANN_FILE))
    self._ivf = faiss.extract_index_ivf(self._ann)
    self.nprobe = nprobe or default_nprobe(self._ivf.nlist)
    self.refine = refine or DEFAULT_REFINE
    # One shard at a time: memory never holds the float32 column.
    codes = [_int8(_unit(index.shard(s, [key])[key]))
             for s in range(len(index.shard_dirs))]
    self._codes = np.concatenate([c for c, _ in codes])
    self._scales = np.concatenate([s for _, s in codes])

  def _rows(self, queries, count):
    """(queries, count) rows the ANN ranks best. A query whose probed
    lists hold fewer than `count` videos probes twice as many lists until
    they hold enough (all lists hold every video)."""
    nlist = self._ivf.nlist
    nprobe = nlist if count >= self.num_videos else min(self.nprobe, nlist)
    rows = np.full((len(queries), count), -1, np.int64)
    todo = np.arange(len(queries))
    while len(todo):
      self._ivf.nprobe = nprobe
      _, found = self._ann.search(queries[todo], count)
      rows[todo] = found
      todo = todo[(found < 0).any(axis=1)]
      nprobe = min(2 * nprobe, nlist)
    return rows

  def search(self, queries, count):
    """(queries, count) rows and their exact cosines, best first: the
    best `count` by (int8) cosine of the ANN's best `refine` x `count`,
    ordered by their exact cosines."""
    queries = _unit(queries)
    rows = self._rows(queries, min(count * self.refine, self.num_videos))
    if rows.shape[1] > count:
      approximate = np.einsum('qcd,qd->qc', self._codes[rows].astype(
          np.float32), queries) * self._scales[rows]
      best = np.argpartition(-approximate, count - 1, axis=1)[:, :count]
      rows = np.take_along_axis(rows, best, 1)
    vectors = _unit(self.index.read_column_rows(self.key, rows.reshape(-1))
                    ).reshape(rows.shape + (-1,))
    cosines = np.einsum('qcd,qd->qc', vectors, queries)
    order = np.lexsort((rows, -cosines), axis=-1)
    return (np.take_along_axis(rows, order, -1),
            np.take_along_axis(cosines, order, -1))


def create(kind, index, key, nprobe=0, refine=0):
  """The first stage `kind` ('ann' or 'exact') of an index."""
  if kind not in FIRST_STAGES:
    raise fmt.SearchError(f'--first_stage={kind} is not one of '
                          f'{", ".join(FIRST_STAGES)}.')
  if kind == 'exact':
    return ExactFirstStage(index, key)
  return AnnFirstStage(index, key, nprobe, refine)
