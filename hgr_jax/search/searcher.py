"""Ranking an index's videos for queries: the first stage, the model's
re-rank of its candidates (or exhaustive scoring), and --explain."""

import dataclasses
import functools
from typing import Dict, List, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from data_pipelines import frame_selection
from hgr_jax import retrieval
from hgr_jax.models import layers
from hgr_jax.models import matching
from hgr_jax.search import first_stage as first_stage_lib
from hgr_jax.search import index_format as fmt
from hgr_jax.search import queries as queries_lib
from hgr_jax.search import reader

# The smallest measured candidate count at which two-stage search lost no
# recall against exhaustive search, on the synthetic test split and a
# generated 3,000-video collection (docs/search.md; 200 lost 1 point of R@10
# on the latter). Ours, from benchmarks/search_latency.py.
DEFAULT_CANDIDATES = 1000
_EXPLAIN_TOKENS = 3  # Frames (clips) listed per query token by --explain.


@dataclasses.dataclass
class Hit:
  """One result: index row, video id, its score at every level and, after
  `Searcher.explain`, its best video tokens per query token kind and slot."""
  row: int
  video_id: str
  scores: Dict[str, float]
  attention: Dict[str, List[List[tuple]]] = dataclasses.field(
      default_factory=dict)


def _pad_to(tree, rows):
  return jax.tree.map(lambda x: np.pad(
      x, [(0, rows - x.shape[0])] + [(0, 0)] * (x.ndim - 1)), tree)


class Searcher:
  """Ranks an index's videos for encoded queries.

  The first stage holds either the ANN (`first_stage='ann'`) or every
  global vector (`'exact'`) in memory; everything else is read per shard
  or per candidate.

  Args:
    exported: an `export.ExportedModel`.
    index: a `reader.Index` built with it.
    query_batch: queries encoded per call (fixed, so it compiles once), and
      scored per pass over the index by exhaustive search.
    first_stage: 'ann' or 'exact' (`first_stage.FIRST_STAGES`).
    nprobe: the ANN's lists scanned per query; 0: the index's default.
    refine: the ANN's candidates per candidate kept; 0: the default.
  """

  def __init__(self, exported, index, query_batch=64, first_stage='ann',
               nprobe=0, refine=0):
    self.exported, self.index = exported, index
    self.hooks = exported.model.search_hooks()
    self.query_batch = query_batch
    self.first_stage = None
    if self.hooks.global_keys:
      self.first_stage = first_stage_lib.create(
          first_stage, index, self.hooks.global_keys[0], nprobe, refine)
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

  def encode(self, queries: Sequence[queries_lib.Query]):
    """Encoded queries (dict of arrays with a leading (queries,) axis)."""
    outputs = []
    for start in range(0, len(queries), self.query_batch):
      part = queries_lib.stack_queries(queries[start:start +
                                               self.query_batch])
      size = len(part['length'])
      if self.hooks.cut_queries:
        part = queries_lib.cut_to_length(part,
                                         self.exported.manifest['max_words'])
      encoded = self.exported.encode_text(_pad_to(part, self.query_batch))
      outputs.append(jax.tree.map(lambda x, s=size: np.asarray(x[:s]),
                                  encoded))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)

  def best_global(self, text, candidates):
    """(queries, candidates) rows of the best global cosines, best first,
    and those cosines."""
    queries = np.asarray(text[self.hooks.global_keys[1]])
    candidates = min(candidates, len(self.index))
    rows, cosines = [], []
    # query_batch queries at a time: the exact scan holds (queries, videos).
    for start in range(0, len(queries), self.query_batch):
      part_rows, part_cosines = self.first_stage.search(
          queries[start:start + self.query_batch], candidates)
      rows.append(part_rows)
      cosines.append(part_cosines)
    return np.concatenate(rows), np.concatenate(cosines)

  def first_stage_rows(self, text, candidates):
    """(queries, candidates) rows of the best global cosines, best first."""
    return self.best_global(text, candidates)[0]

  def _candidate_buffers(self, count):
    """Per-field arrays one `read_rows` of `count` records fills, and the
    float32 codes and column arrays the re-rank reads, all aligned (read by
    JAX in place) and kept from query to query."""
    if self._buffers is None or len(self._buffers[0].rows) != count:
      dtype = self.index.record_dtype
      fields = [reader.aligned_empty((count,) + dtype[name].shape,
                                     dtype[name].base)
                for name in dtype.names]
      floats = {key: reader.aligned_empty((count,) + dtype[key].shape,
                                          np.float32)
                for key in self.index.token_keys
                if dtype[key].base != np.float32}
      columns = {key: reader.aligned_empty((count,) + value.shape[1:],
                                           value.dtype)
                 for key, value in self._columns.items()}
      self._buffers = reader.RowBuffers(fields), floats, columns
    return self._buffers

  def read_candidates(self, rows):
    """The re-rank's inputs for candidates `rows`: (tokens, columns).

    Buffers are reused: the result is valid until the next call.
    """
    row_buffers, floats, columns = self._candidate_buffers(len(rows))
    self.index.read_rows(rows, fmt.RECORDS_FILE, row_buffers)
    by_name = dict(zip(self.index.record_dtype.names, row_buffers.arrays))
    tokens = {}
    for key in self.index.token_keys:
      codes = by_name[key]
      if key in floats:
        # NumPy's int8 -> float32 cast is vectorised; XLA's was 10x slower.
        np.copyto(floats[key], codes, casting='unsafe')
        codes = floats[key]
      tokens[key] = (codes, by_name[key + fmt.SCALE],
                     by_name[key + fmt.GRAM])
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
    two_stage = bool(candidates) and self.first_stage is not None
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
    positions = [frame_selection.frame_positions(
        n, self.exported.manifest['max_frames'])
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
    alignment: a `search_hooks.Alignment`.
    sigma: HGR's attention temperature (used when `alignment.attention`).
  """
  if alignment.attention:
    return matching.phrase_frame_attention(
        video_tokens, valid, text_tokens[None], sigma)[:, 0]
  cosines = jnp.einsum('vtd,sd->vst', layers.l2_normalize(video_tokens),
                       layers.l2_normalize(text_tokens))
  return jnp.where(valid[:, None, :], cosines, -jnp.inf)


def explained_slots(query, hit, hooks):
  """A hit's explanation as (kind, label, unit, [(token, weight), ...])
  rows: the query's phrase or word as label ('' slots left out), or the
  learned slot's number."""
  rows = []
  for kind, slots in hit.attention.items():
    alignment = hooks.alignments.get(kind)
    unit = alignment.unit if alignment else 'frame'
    labels = query.phrases.get(kind) or [
        str(i + 1) for i in range(len(slots))]
    for label, tokens in zip(labels, slots):
      if label:
        rows.append((kind, f'"{label}"' if kind in query.phrases else label,
                     unit, tokens))
  return rows
