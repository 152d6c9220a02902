"""Evaluation: encode every video and caption once, score in tiles, rank.

Encoders and the tile scorer are jit-compiled once for fixed batch and tile
shapes (the last batch or tile is zero-padded and the padding dropped), with
the batch or caption axis split over the device mesh.
"""

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import input_pipeline
from hgr_jax import metrics as metrics_lib
from hgr_jax import sharding


def _round_up(value, multiple):
  return -(-value // multiple) * multiple


def _pad_rows(tree, size):
  """Zero-pads every array of `tree` along axis 0 to `size` rows."""
  def pad(x):
    widths = [(0, size - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
    return jnp.pad(x, widths) if isinstance(x, jax.Array) else np.pad(x, widths)
  return jax.tree.map(pad, tree)


class Evaluator:
  """Compiled encoders and scorer of one model on one mesh."""

  def __init__(self, model, mesh, batch_size, tile_videos, tile_captions):
    devices = mesh.devices.size
    self.mesh = mesh
    self.batch_size = _round_up(batch_size, devices)
    self.tile_videos = tile_videos
    self.tile_captions = _round_up(tile_captions, devices)
    split, replicated = sharding.batch_sharded(mesh), sharding.replicated(mesh)

    # `variables`: the model's collections, {'params': ..., 'batch_stats':
    # ...}; batch norm uses its running averages here.
    def encode_videos(variables, batch):
      return model.apply(variables, batch['frames'], batch['frame_mask'],
                         method=model.encode_video)

    def encode_captions(variables, batch):
      return model.apply(variables, batch, method=model.encode_text)

    def score_tile(variables, videos, captions):
      return model.apply(variables, videos, captions, method=model.scores)

    self._encode_videos = jax.jit(encode_videos,
                                  in_shardings=(replicated, split),
                                  out_shardings=split)
    self._encode_captions = jax.jit(encode_captions,
                                    in_shardings=(replicated, split),
                                    out_shardings=split)
    # Videos of a tile are replicated, its captions split over devices.
    self._score_tile = jax.jit(score_tile,
                               in_shardings=(replicated, replicated, split),
                               out_shardings=replicated)

  def _encode(self, encode, variables, batches, keys):
    """Encodes batches of any size in compiled chunks of `self.batch_size`."""
    outputs = []
    for batch in batches:
      rows = len(batch[keys[0]])
      for start in range(0, rows, self.batch_size):
        chunk = {k: batch[k][start:start + self.batch_size] for k in keys}
        size = len(chunk[keys[0]])
        encoded = encode(variables, _pad_rows(chunk, self.batch_size))
        outputs.append(jax.tree.map(lambda x, size=size: x[:size], encoded))
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *outputs)

  def encode_videos(self, variables, batches):
    """Batches of {frames, frame_mask} -> encoded videos, concatenated."""
    return self._encode(self._encode_videos, variables, batches,
                        ('frames', 'frame_mask'))

  def encode_captions(self, variables, batches):
    """Batches of caption fields -> encoded captions, concatenated."""
    return self._encode(self._encode_captions, variables, batches,
                        input_pipeline.CAPTION_KEYS)

  def score_matrix(self, variables, videos, captions):
    """Encoded videos x encoded captions -> dict of (videos, captions) arrays.

    Both sides are zero-padded once to whole tiles; padded rows and columns
    are cut from the result.
    """
    num_videos = jax.tree.leaves(videos)[0].shape[0]
    num_captions = jax.tree.leaves(captions)[0].shape[0]
    videos = _pad_rows(videos, _round_up(num_videos, self.tile_videos))
    captions = _pad_rows(captions, _round_up(num_captions, self.tile_captions))
    tile = lambda tree, start, size: jax.tree.map(
        lambda x: x[start:start + size], tree)
    rows = []
    for v in range(0, num_videos, self.tile_videos):
      video_tile = tile(videos, v, self.tile_videos)
      rows.append([self._score_tile(variables, video_tile,
                                    tile(captions, c, self.tile_captions))
                   for c in range(0, num_captions, self.tile_captions)])
    levels = rows[0][0].keys()
    return {level: np.block([[np.asarray(t[level]) for t in row]
                             for row in rows])[:num_videos, :num_captions]
            for level in levels}

  def evaluate(self, variables, builder, split, config):
    """Metrics of `split`: fused-score retrieval metrics plus per-level rsum."""
    videos = self.encode_videos(variables, tfds.as_numpy(
        input_pipeline.video_dataset(builder, split, config, self.batch_size)))
    caption_batches = list(tfds.as_numpy(
        input_pipeline.caption_dataset(builder, split, self.batch_size)))
    caption_video = np.concatenate([b['video_index'] for b in caption_batches])
    captions = self.encode_captions(variables, caption_batches)
    scores = self.score_matrix(variables, videos, captions)
    results = metrics_lib.retrieval_metrics(scores['fused'], caption_video)
    for level, level_scores in scores.items():
      if level != 'fused':
        results[f'{level}_rsum'] = metrics_lib.retrieval_metrics(
            level_scores, caption_video)['rsum']
    return results
