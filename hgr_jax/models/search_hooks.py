"""What text-to-video search needs to know about a model.

Each model class says it with `DualEncoder.search_hooks` (its default: no
global score, so search is exhaustive and explains nothing); `hgr_jax.search`
reads only this, so a new model needs no edit there.
"""

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional


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


@dataclasses.dataclass(frozen=True)
class SearchHooks:
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
      scores of two-stage candidates from the index's records (see
      `hgr.candidate_scores`), jitted once; None: the model's `scores` of
      the decoded candidates.
    rerank_columns: the small per-video arrays `rerank` reads, held in
      memory.
    cut_queries: the text encoder gives the same outputs for captions cut to
      their length (tested for HGR), so queries are encoded without the
      padding steps.
  """
  uses_role_graph: bool = True
  global_keys: Optional[tuple] = None
  alignments: Mapping[str, Alignment] = dataclasses.field(
      default_factory=dict)
  rerank: Optional[Callable[..., Dict[str, Any]]] = None
  rerank_columns: tuple = ()
  cut_queries: bool = False
