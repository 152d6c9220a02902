"""Evaluation: encode every video and caption once, score in tiles, rank.

Encoders and the tile scorer are jit-compiled once for fixed batch and tile
shapes (the last batch or tile is zero-padded and the padding dropped), with
the batch or caption axis split over the device mesh. The tile shape comes
from a memory budget: the compiled scorer's own temporaries, measured by XLA
on a small probe tile, scaled to the largest tile that fits.

The encoded split is fetched to the host once and every tile is placed from
there: no eager operation ever runs on a sharded array (each would be a
small cross-device program of its own).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import input_pipeline
from hgr_jax import metrics as metrics_lib
from hgr_jax import retrieval
from hgr_jax import sharding

# Working memory of the scoring tiles when config.eval_memory_budget_gb is
# None: a 16 GB accelerator keeps room for the encoded split and XLA; on CPU
# the whole evaluation of a VATEX-sized split stays within 4 GB.
DEFAULT_BUDGET_GB = {'cpu': 1.0}
DEFAULT_ACCELERATOR_BUDGET_GB = 4.0
# Tile sides are multiples of this (times the device count for captions),
# which keeps the compiled shapes few and the caption axis divisible.
_TILE_QUANTUM = 8
_PROBE_VIDEOS, _PROBE_CAPTIONS = 8, 64


def _round_up(value, multiple):
  return -(-value // multiple) * multiple


def _pad_rows(tree, size):
  """Zero-pads every NumPy array of `tree` along axis 0 to `size` rows."""
  def pad(x):
    return np.pad(x, [(0, size - x.shape[0])] + [(0, 0)] * (x.ndim - 1))
  return jax.tree.map(pad, tree)


def _rows(tree, start, size):
  return jax.tree.map(lambda x: x[start:start + size], tree)


def _num_rows(tree):
  return jax.tree.leaves(tree)[0].shape[0]


def default_budget_gb(platform):
  """Default tile working memory per device, in GB, for a JAX platform."""
  return DEFAULT_BUDGET_GB.get(platform, DEFAULT_ACCELERATOR_BUDGET_GB)


def tile_shape(bytes_per_pair, budget_bytes, num_videos, num_captions,
               devices):
  """(tile_videos, tile_captions) whose pairs fit `budget_bytes` per device.

  Tiles are about square, which keeps the operands each tile reads small
  next to the pairs it scores, and never much larger than the problem.

  Args:
    bytes_per_pair: working memory of one (video, caption) pair.
    budget_bytes: working memory allowed per device.
    num_videos, num_captions: the problem size.
    devices: number of devices the caption axis is split over.
  """
  pairs = int(budget_bytes // bytes_per_pair) * devices
  quantum = _TILE_QUANTUM * devices
  square = max(quantum, math.isqrt(pairs) // quantum * quantum)
  tile_captions = min(_round_up(num_captions, quantum), square)
  tile_videos = min(_round_up(num_videos, _TILE_QUANTUM),
                    max(1, pairs // tile_captions))
  if tile_videos > _TILE_QUANTUM:
    tile_videos -= tile_videos % _TILE_QUANTUM
  # Few videos leave room for more captions.
  wider = pairs // tile_videos // quantum * quantum
  tile_captions = max(tile_captions,
                      min(_round_up(num_captions, quantum), wider))
  # As many tiles as these sizes need, made as even as the quanta allow, so
  # that the last tile is not mostly padding.
  tile_videos = _even(num_videos, tile_videos,
                      _TILE_QUANTUM if tile_videos >= _TILE_QUANTUM else 1)
  tile_captions = _even(num_captions, tile_captions, quantum)
  return tile_videos, tile_captions


def _even(total, size, quantum):
  """The smallest multiple of `quantum` covering `total` in as many tiles."""
  tiles = -(-total // size)
  return min(size, _round_up(-(-total // tiles), quantum))


class Evaluator:
  """Compiled encoders and scorer of one model on one mesh.

  Args:
    model: a `DualEncoder`.
    mesh: the devices to run on (1-D 'data' mesh).
    batch_size: encoder batch (rounded up to a multiple of the devices).
    memory_budget_gb: scoring tile working memory per device; None picks
      `default_budget_gb` of the mesh's platform.
    bfloat16: score with bfloat16 matrix products (float32 accumulation).
  """

  def __init__(self, model, mesh, batch_size, memory_budget_gb=None,
               bfloat16=False):
    self.devices = mesh.devices.size
    self.mesh = mesh
    self.batch_size = _round_up(batch_size, self.devices)
    platform = mesh.devices.flat[0].platform
    if memory_budget_gb is None:
      memory_budget_gb = default_budget_gb(platform)
    if memory_budget_gb <= 0:
      raise ValueError('config.eval_memory_budget_gb must be positive, got '
                       f'{memory_budget_gb}.')
    self.budget_bytes = memory_budget_gb * 2**30
    self._tile_cost = None  # Bytes per pair, measured on first use.
    self._score_kwargs = {'matmul_dtype': jnp.bfloat16} if bfloat16 else {}
    self.model = model
    split, replicated = sharding.batch_sharded(mesh), sharding.replicated(mesh)
    self._split, self._replicated = split, replicated

    # `variables`: the model's collections, {'params': ..., 'batch_stats':
    # ...}; batch norm uses its running averages here.
    def encode_videos(variables, batch):
      return model.apply(variables, batch['frames'], batch['frame_mask'],
                         method=model.encode_video)

    def encode_captions(variables, batch):
      return model.apply(variables, batch, method=model.encode_text)

    def score_tile(variables, videos, captions):
      return model.apply(variables, videos, captions, method=model.scores,
                         **self._score_kwargs)

    def score_pairs(variables, videos, captions):
      one = lambda v, c: jax.tree.map(
          lambda s: s[0, 0], score_tile(variables, jax.tree.map(
              lambda x: x[None], v), jax.tree.map(lambda x: x[None], c)))
      return jax.vmap(one)(videos, captions)

    jit = lambda fn, *shardings: jax.jit(
        sharding.on_mesh(fn, mesh), in_shardings=shardings[:-1],
        out_shardings=shardings[-1])
    self._encode_videos = jit(encode_videos, replicated, split, split)
    self._encode_captions = jit(encode_captions, replicated, split, split)
    # Videos of a tile are replicated, its captions split over devices.
    self._score_tile = jit(score_tile, replicated, replicated, split,
                           replicated)
    self._score_pairs = jit(score_pairs, replicated, split, split, split)

  def _place(self, variables):
    """The model's variables on every device, placed once per call rather
    than copied from the host by every compiled call."""
    return jax.device_put(variables, self._replicated)

  def _encode(self, encode, variables, batches, keys):
    """Encodes batches of any size in compiled chunks of `self.batch_size`.

    Returns:
      The encodings, concatenated, as NumPy arrays on the host.
    """
    variables = self._place(variables)
    outputs = []
    for batch in batches:
      rows = len(batch[keys[0]])
      for start in range(0, rows, self.batch_size):
        chunk = {k: batch[k][start:start + self.batch_size] for k in keys}
        size = len(chunk[keys[0]])
        # Placed before the call: with several processes jit refuses NumPy
        # inputs of a split sharding, even over this host's devices.
        encoded = jax.device_get(encode(variables, jax.device_put(
            _pad_rows(chunk, self.batch_size), self._split)))
        outputs.append(jax.tree.map(lambda x, size=size: x[:size], encoded))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)

  def encode_videos(self, variables, batches):
    """Batches of {frames, frame_mask} -> encoded videos (NumPy)."""
    return self._encode(self._encode_videos, variables, batches,
                        ('frames', 'frame_mask'))

  def encode_captions(self, variables, batches):
    """Batches of caption fields -> encoded captions (NumPy)."""
    return self._encode(self._encode_captions, variables, batches,
                        input_pipeline.CAPTION_KEYS)

  def _video_tile(self, videos, start, size):
    """Rows [start, start + size) zero-padded, replicated on every device."""
    return jax.device_put(_pad_rows(_rows(videos, start, size), size),
                          self._replicated)

  def _caption_tile(self, captions, start, size):
    """Rows [start, start + size) zero-padded, split over the devices."""
    return jax.device_put(_pad_rows(_rows(captions, start, size), size),
                          self._split)

  def bytes_per_pair(self, variables, videos, captions):
    """Scoring working memory per (video, caption) pair and device.

    XLA's memory analysis of the scorer compiled for a probe tile; the
    probe's fixed costs are counted per pair, which errs on the safe side.
    """
    if self._tile_cost is None:
      probe_captions = _PROBE_CAPTIONS * self.devices
      compiled = self._score_tile.lower(
          variables, self._video_tile(videos, 0, _PROBE_VIDEOS),
          self._caption_tile(captions, 0, probe_captions)).compile()
      stats = compiled.memory_analysis()
      used = stats.temp_size_in_bytes + stats.output_size_in_bytes
      self._tile_cost = used / (_PROBE_VIDEOS * _PROBE_CAPTIONS)
    return self._tile_cost

  def tile_shape(self, variables, videos, captions):
    """(tile_videos, tile_captions) of this problem under the budget."""
    return tile_shape(self.bytes_per_pair(variables, videos, captions),
                      self.budget_bytes, _num_rows(videos),
                      _num_rows(captions), self.devices)

  def score_matrix(self, variables, videos, captions):
    """Encoded videos x encoded captions -> dict of (videos, captions) arrays.

    Tiles at the end are zero-padded to the full tile shape (one compiled
    scorer); padded rows and columns are cut from the result.
    """
    variables = self._place(variables)
    num_videos, num_captions = _num_rows(videos), _num_rows(captions)
    tile_videos, tile_captions = self.tile_shape(variables, videos,
                                                  captions)
    out = None
    for v in range(0, num_videos, tile_videos):
      video_tile = self._video_tile(videos, v, tile_videos)
      for c in range(0, num_captions, tile_captions):
        scores = self._score_tile(
            variables, video_tile,
            self._caption_tile(captions, c, tile_captions))
        if out is None:
          out = {level: np.empty((num_videos, num_captions), np.float32)
                 for level in scores}
        for level, level_scores in scores.items():
          block = out[level][v:v + tile_videos, c:c + tile_captions]
          block[...] = np.asarray(level_scores)[:block.shape[0],
                                                :block.shape[1]]
    return out

  def pair_scores(self, variables, videos, video_rows, caption_batches):
    """Scores of aligned pairs: encoded video `video_rows[i]`, caption i.

    Args:
      variables: the model's variables.
      videos: encoded videos.
      video_rows: (pairs,) int rows of `videos`.
      caption_batches: batches of caption fields, (pairs,) rows in all.

    Returns:
      dict of (pairs,) score arrays, one per level.
    """
    captions = self.encode_captions(variables, caption_batches)
    variables = self._place(variables)
    pair_videos = jax.tree.map(lambda x: x[np.asarray(video_rows)], videos)
    outputs = []
    for start in range(0, len(video_rows), self.batch_size):
      chunk = [_rows(tree, start, self.batch_size)
               for tree in (pair_videos, captions)]
      size = _num_rows(chunk[0])
      scores = self._score_pairs(variables, *[
          jax.device_put(_pad_rows(tree, self.batch_size), self._split)
          for tree in chunk])
      outputs.append({k: np.asarray(v)[:size] for k, v in scores.items()})
    return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}

  def top_k_videos(self, variables, captions, video_batches, k):
    """The k best videos per caption, videos encoded and scored as they come.

    Args:
      variables: the model's variables.
      captions: encoded captions (the queries).
      video_batches: iterable of {frames, frame_mask} batches of at most
        `batch_size` videos, e.g. `input_pipeline.video_dataset`.
      k: results per caption.

    Returns:
      `retrieval.TopK` of fused scores, video indices in stream order.
    """
    def fused(videos, queries, variables):
      return self.model.apply(variables, videos, queries,
                              method=self.model.scores,
                              **self._score_kwargs)['fused']
    variables = self._place(variables)
    chunks = (self.encode_videos(variables, [batch])
              for batch in video_batches)
    return retrieval.streaming_top_k(fused, captions, chunks, k,
                                     self.batch_size, (variables,))

  def evaluate(self, variables, builder, split, config):
    """Metrics of `split`: fused-score retrieval metrics plus per-level rsum."""
    videos = self.encode_videos(variables, tfds.as_numpy(
        input_pipeline.video_dataset(builder, split, config, self.batch_size)))
    caption_batches = list(tfds.as_numpy(
        input_pipeline.caption_dataset(builder, split, self.batch_size)))
    caption_video = np.concatenate([b['video_index'] for b in caption_batches])
    sentences = np.concatenate([b['text'] for b in caption_batches])
    captions = self.encode_captions(variables, caption_batches)
    scores = self.model.rerank(self.score_matrix(variables, videos, captions))
    rank = functools.partial(metrics_lib.retrieval_metrics,
                             caption_video=caption_video,
                             protocol=config.eval_protocol,
                             sentences=sentences)
    results = rank(scores['fused'])
    for level, level_scores in scores.items():
      if level != 'fused':
        results[f'{level}_rsum'] = rank(level_scores)['rsum']
    return results
