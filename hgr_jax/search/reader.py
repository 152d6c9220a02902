"""Reading a built index: whole shards, single rows, and per-video columns."""

import math
import os

import flax
import numpy as np

from hgr_jax.search import index_format as fmt


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
    header_path = os.path.join(path, fmt.INDEX_FILE)
    if not os.path.exists(header_path):
      raise fmt.SearchError(
          f'--index={path} is not an index (no {fmt.INDEX_FILE}): build one '
          'with python -m hgr_jax.search index.')
    self.header = fmt.read_json(header_path)
    fmt.check_format(self.header, path)
    fmt.check_export(self.header, exported, path)
    num_shards = -(-self.header['num_videos'] // self.header['chunk_size'])
    if not self.header.get('complete'):
      done = sum(os.path.isdir(fmt.shard_dir(path, s))
                 for s in range(num_shards))
      raise fmt.SearchError(
          f'{path} is incomplete ({done} of {num_shards} shards): run the '
          'same index command again to finish it.')
    self.path = path
    self.shard_dirs = [fmt.shard_dir(path, s) for s in range(num_shards)]
    self.video_ids = [i for d in self.shard_dirs
                      for i in fmt.read_json(os.path.join(d, fmt.IDS_FILE))]
    self.chunk_size = self.header['chunk_size']
    self._layouts = {}
    self._num_frames = None
    self._video_files = None
    names = os.listdir(self.shard_dirs[0])
    self.column_keys = sorted(
        name[len(fmt.ENCODED_PREFIX):-len('.npy')] for name in names
        if name.startswith(fmt.ENCODED_PREFIX))
    self.record_dtype = (self._layout(0, fmt.RECORDS_FILE)[1]
                         if fmt.RECORDS_FILE in names else None)
    self.token_keys = (fmt.token_keys(self.record_dtype)
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
        raise fmt.SearchError(f'{array.filename} is not stored in C order: '
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
    flat = fmt.decode_records(np.load(self._path(shard, fmt.RECORDS_FILE)),
                              tokens) if tokens else {}
    for key in keys:
      if key not in tokens:
        flat[key] = np.load(self._path(shard, fmt.encoded_file(key)))
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
    # Grouped by shard (one sort, not a pass over the rows per shard).
    order = np.argsort(shards, kind='stable')
    present, firsts = np.unique(shards[order], return_index=True)
    for shard, group in zip(present, np.split(order, firsts[1:])):
      start, row = self._layout(int(shard), name)
      descriptor = os.open(self._path(int(shard), name), os.O_RDONLY)
      try:
        for i in group:
          os.preadv(descriptor, buffers[i],
                    start + int(offsets[i]) * row.itemsize)
      finally:
        os.close(descriptor)

  def read_column_rows(self, key, rows):
    """(len(rows), ...) rows of the encoded array `key`, read from disk."""
    _, row = self._layout(0, fmt.encoded_file(key))
    out = np.empty((len(rows),) + row.shape, row.base)
    self.read_rows(rows, fmt.encoded_file(key), [out])
    return out

  def gather(self, rows, keys=None):
    """The encoded videos at index rows `rows` (in that order), float."""
    keys = keys or self.keys
    flat = {}
    if any(k in self.token_keys for k in keys):
      records = np.empty(len(rows), self.record_dtype)
      self.read_rows(rows, fmt.RECORDS_FILE, [records])
      flat.update(fmt.decode_records(
          records, [k for k in keys if k in self.token_keys]))
    for key in keys:
      if key not in flat:
        flat[key] = self.read_column_rows(key, rows)
    return flax.traverse_util.unflatten_dict(flat, sep='/')

  def num_frames(self, rows):
    """Original frame counts of the videos at `rows`."""
    if self._num_frames is None:
      self._num_frames = np.concatenate([
          np.load(os.path.join(d, fmt.NUM_FRAMES_FILE))
          for d in self.shard_dirs])
    return self._num_frames[np.asarray(rows)]

  def video_file(self, row):
    """(video file, (frames,) time of each feature row in seconds) of the
    video at `row`, or None when it was not indexed from a file."""
    shard, offset = divmod(int(row), self.chunk_size)
    if self._video_files is None:
      self._video_files = {}
    if shard not in self._video_files:
      path = self._path(shard, fmt.VIDEO_FILES_FILE)
      self._video_files[shard] = (fmt.read_json(path)
                                  if os.path.exists(path) else None)
    files = self._video_files[shard]
    return files[offset] if files else None
