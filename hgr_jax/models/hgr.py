"""HGR: Hierarchical Graph Reasoning (Chen et al., CVPR 2020)."""

from typing import Any, Callable, Mapping, Optional

import flax

from hgr_jax.models import clip
from hgr_jax.models import dual_encoder
from hgr_jax.models import matching
from hgr_jax.models import registry
from hgr_jax.models import search_hooks
from hgr_jax.models import text_encoders
from hgr_jax.models import video_encoders


@registry.register('hgr')
class HGR(dual_encoder.DualEncoder):
  """Role-graph text encoder + three-space video encoder, global and local matching."""
  vocab_size: int
  word_dim: int = 300
  hidden_size: int = 1024
  num_roles: int = 16
  gcn_layers: int = 1
  text_dropout: float = 0.2
  gcn_dropout: float = 0.5
  video_dropout: float = 0.2
  attention_sigma: float = 4.0
  margin: float = 0.2
  loss_weights: Mapping[str, float] = flax.core.FrozenDict(fused=1.0)
  # False (official): other captions of the positive's video are negatives.
  mask_same_video_negatives: bool = False
  # None: the official uniform word embedding
  # (initializers.torch_word_embedding).
  embedding_init: Optional[Callable[..., Any]] = None
  # Sizes of a pretrained CLIP text tower that replaces the BiGRU
  # (models.create_model sets it from config.text_encoder).
  clip_text: Optional[clip.TowerSizes] = None
  # Operand type of the BiGRU's products: 'bfloat16' (float32
  # accumulation) is faster where the backend multiplies bfloat16 natively.
  gru_matmul_dtype: str = 'float32'
  # 'plain', 'packed' (XLA:CPU) or 'auto' (by backend), see bigru.BiGRU.
  gru_implementation: str = 'auto'

  def setup(self):
    self.video_encoder = video_encoders.MultiLevelVideoEncoder(
        self.hidden_size, self.video_dropout)
    self.text_encoder = text_encoders.RoleGraphEncoder(
        self.vocab_size, self.word_dim, self.hidden_size, self.num_roles,
        self.gcn_layers, self.text_dropout, self.gcn_dropout,
        self.embedding_init, clip_text=self.clip_text,
        gru_matmul_dtype=self.gru_matmul_dtype,
        gru_implementation=self.gru_implementation)

  def scores(self, video, text, matmul_dtype=None):
    """Encoded videos x encoded captions -> dict of (videos, captions) scores."""
    return matching.hgr_scores(video, text, self.attention_sigma, matmul_dtype)

  @flax.linen.nowrap
  def search_hooks(self):
    """Two-stage search re-ranks from the index's records (Gram matrices
    included) with `candidate_scores`; --explain shows each verb's and noun
    phrase's attention over the frames."""
    return search_hooks.SearchHooks(
        global_keys=('event', 'sentence'),
        alignments={'verb': search_hooks.Alignment('actions', 'verbs'),
                    'noun': search_hooks.Alignment('entities', 'nouns')},
        rerank=candidate_scores, rerank_columns=('frame_mask',),
        cut_queries=True)


def candidate_scores(model, tokens, columns, text, global_cosines):
  """HGR's scores of search candidates for one query (`hgr_scores`).

  Args:
    model: the HGR module (its attention temperature).
    tokens: {'actions', 'entities'}: (codes, scale, gram) of the candidates,
      as the search index stores them.
    columns: {'frame_mask': (videos, frames) bool}.
    text: one encoded query, no batch axis.
    global_cosines: (videos,) the first stage's event/sentence cosines.

  Returns:
    dict of (videos,) scores: global, verb, noun and fused.
  """
  scores = {'global': global_cosines}
  for level, video_key in (('verb', 'actions'), ('noun', 'entities')):
    scores[level] = matching.phrase_scores_from_gram(
        *tokens[video_key], columns['frame_mask'], text[f'{level}s'],
        text[f'{level}_mask'], model.attention_sigma)
  scores['fused'] = (scores['global'] + scores['verb'] + scores['noun']) / 3
  return scores
