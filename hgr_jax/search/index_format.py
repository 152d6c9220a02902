"""The on-disk layout of a search index, and its per-video records.

  INDEX/index.json                 format_version, export_hash, model_name,
                                   source, num_videos, chunk_size,
                                   token_dtype, complete
  INDEX/shard-00000/records.npy    one structured record per video (below)
  INDEX/shard-00000/encoded.KEY.npy  every other encoded array, one each
  INDEX/shard-00000/num_frames.npy original frame counts (--explain)
  INDEX/shard-00000/video_ids.json
  INDEX/shard-00000/video_files.json  for videos indexed from files: each
                                   one's [file, [time of each frame]]
  INDEX/ann/                       the first stage's ANN (`first_stage`)

A shard is written whole (a temporary folder renamed), so after a crash
every shard-N folder is complete.
"""

import json
import os

import numpy as np

# 2: token arrays in one record per video (RECORDS_FILE), int8 by default.
INDEX_FORMAT_VERSION = 2
INDEX_FILE = 'index.json'
IDS_FILE = 'video_ids.json'
NUM_FRAMES_FILE = 'num_frames.npy'
RECORDS_FILE = 'records.npy'
VIDEO_FILES_FILE = 'video_files.json'
ENCODED_PREFIX = 'encoded.'
# Record fields beside a token array's codes: code * scale = value per token,
# and the video's (tokens, tokens) Gram matrix, taken before quantisation.
SCALE = ':scale'
GRAM = ':gram'
TOKEN_DTYPES = ('int8', 'float32')
# int8 quarters the bytes a candidate costs to read; on the synthetic HGR
# (docs/search.md) it moved fused scores by at most 4e-4 and R@1/5/10 by at
# most one query against float32 exhaustive search. Ours, from
# benchmarks/search_latency.py.
DEFAULT_TOKEN_DTYPE = 'int8'


class SearchError(ValueError):
  """Bad input to indexing or search; the message names the fix."""


def shard_dir(index_dir, shard):
  return os.path.join(index_dir, f'shard-{shard:05d}')


def encoded_file(key):
  """The shard file of the encoded array `key` (not a token array)."""
  return f'{ENCODED_PREFIX}{key}.npy'


def read_json(path):
  with open(path) as f:
    return json.load(f)


def write_json(path, value):
  """Writes `value` to `path` atomically (a temporary file renamed)."""
  with open(path + '.tmp', 'w') as f:
    json.dump(value, f, indent=2, sort_keys=True)
  os.replace(path + '.tmp', path)


def check_format(header, index_dir):
  version = header.get('format_version')
  if version != INDEX_FORMAT_VERSION:
    raise SearchError(
        f'{index_dir} has index format {version}, this code reads '
        f'{INDEX_FORMAT_VERSION}: index again with python -m hgr_jax.search '
        'index into a new --out.')


def check_export(header, exported, index_dir):
  if header['export_hash'] != exported.content_hash:
    raise SearchError(
        f'{index_dir} was built with another export (content hash '
        f'{header["export_hash"][:12]}, {header["model_name"]}) than '
        f'--export={exported.path} ({exported.content_hash[:12]}): query it '
        'with that export, or index again into a new --out.')


def check_token_dtype(token_dtype):
  if token_dtype not in TOKEN_DTYPES:
    raise SearchError(f'--token_dtype={token_dtype} is not one of '
                      f'{", ".join(TOKEN_DTYPES)}.')


def is_token_array(value):
  """Whether an encoded video array is per-token vectors (videos, tokens, w)."""
  return value.ndim == 3 and np.issubdtype(value.dtype, np.floating)


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
  check_token_dtype(token_dtype)
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
    fields[key + SCALE] = scale.astype(np.float32)
    fields[key + GRAM] = np.einsum('vtd,vsd->vts', value, value)
  records = np.empty(len(next(iter(fields.values()))), np.dtype(
      [(k, v.dtype, v.shape[1:]) for k, v in fields.items()]))
  for key, value in fields.items():
    records[key] = value
  return records


def token_keys(record_dtype):
  """The token array keys of a record dtype (`encode_records`)."""
  return [name for name in record_dtype.names
          if not name.endswith((SCALE, GRAM))]


def decode_records(records, keys=None):
  """{key: (videos, tokens, width) float32} of records: codes x scale."""
  return {key: records[key].astype(np.float32) *
               records[key + SCALE][..., None]
          for key in keys or token_keys(records.dtype)}
