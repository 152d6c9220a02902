"""Text-to-video retrieval over collections larger than memory.

The videos arrive in chunks (encoded on the fly or read from disk); each
chunk is scored against all queries and merged into a running top-k per
query, so memory holds one chunk and a (queries, k) result, never the
(videos, queries) matrix.
"""

import functools
from typing import Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class TopK(NamedTuple):
  """scores and indices (queries, k), best first; indices into the stream."""
  scores: np.ndarray
  indices: np.ndarray


def merge_top_k(best_scores, best_indices, chunk_scores, offset, valid, k):
  """Merges a chunk's scores into the running top-k.

  Args:
    best_scores, best_indices: (queries, k) running result.
    chunk_scores: (chunk, queries) scores of the chunk's videos.
    offset: index of the chunk's first video in the stream.
    valid: number of real videos in the chunk (the rest is padding).
    k: results kept per query.

  Returns:
    The merged (queries, k) scores and indices.
  """
  chunk = chunk_scores.shape[0]
  scores = jnp.where(jnp.arange(chunk)[:, None] < valid, chunk_scores,
                     -jnp.inf).T
  indices = jnp.broadcast_to(offset + jnp.arange(chunk, dtype=jnp.int32),
                             scores.shape)
  # Running results first: on equal scores the earlier video stays ahead.
  all_scores = jnp.concatenate([best_scores, scores], axis=1)
  all_indices = jnp.concatenate([best_indices, indices], axis=1)
  top_scores, positions = jax.lax.top_k(all_scores, k)
  return top_scores, jnp.take_along_axis(all_indices, positions, axis=1)


@functools.lru_cache(maxsize=16)
def _merge_step(score_chunk, k):
  """The jitted score-and-merge step; cached so that repeated searches with
  the same scorer compile once."""
  @jax.jit
  def step(best_scores, best_indices, videos, offset, valid, queries,
           score_args):
    chunk_scores = score_chunk(videos, queries, *score_args)
    chunk_scores = chunk_scores.astype(jnp.float32)
    return merge_top_k(best_scores, best_indices, chunk_scores, offset, valid,
                       k)
  return step


def streaming_top_k(score_chunk: Callable, queries, video_chunks: Iterable,
                    k: int, chunk_size: int, score_args=()) -> TopK:
  """The k best videos of a stream for every query.

  Args:
    score_chunk: (videos, queries, *score_args) -> (videos, queries)
      scores, e.g. a model's fused score; traced once, for chunks of exactly
      `chunk_size` rows.
    queries: the encoded queries (any pytree with a leading queries axis).
    video_chunks: iterable of encoded video pytrees, leading axis at most
      `chunk_size`, in stream order.
    k: results per query.
    chunk_size: rows per scored chunk (shorter chunks are zero-padded, so
      `score_chunk` compiles once).
    score_args: further arguments of `score_chunk` (e.g. parameters), passed
      as arguments rather than baked into the compiled program.

  Returns:
    `TopK`; where the stream has fewer than k videos the tail holds -inf
    scores and index -1.
  """
  num_queries = jax.tree.leaves(queries)[0].shape[0]
  queries = jax.device_put(queries)  # Once, not by every compiled call.
  best_scores = jnp.full((num_queries, k), -jnp.inf, jnp.float32)
  best_indices = jnp.full((num_queries, k), -1, jnp.int32)
  step = _merge_step(score_chunk, k)

  offset = 0
  for videos in video_chunks:
    rows = jax.tree.leaves(videos)[0].shape[0]
    if rows > chunk_size:
      raise ValueError(f'A chunk of {rows} videos exceeds chunk_size='
                       f'{chunk_size}.')
    padded = jax.tree.map(
        lambda x: jnp.pad(x, [(0, chunk_size - rows)] + [(0, 0)] *
                          (x.ndim - 1)), videos)
    best_scores, best_indices = step(best_scores, best_indices, padded,
                                     jnp.int32(offset), jnp.int32(rows),
                                     queries, tuple(score_args))
    offset += rows
  return TopK(np.asarray(best_scores), np.asarray(best_indices))
