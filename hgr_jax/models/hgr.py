"""HGR: Hierarchical Graph Reasoning (Chen et al., CVPR 2020)."""

from typing import Any, Callable, Mapping, Optional

import flax
import ml_collections

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

  @staticmethod
  def paper_config():
    """This model's experiment settings: `config.model` and the top-level
    fields the paper fixes. HGR: Chen et al., CVPR 2020, and its official
    code (cshizhe/hgr_v2t, t2vretrieval/driver/configs)."""
    return ml_collections.ConfigDict(dict(model=paper_model_config()))

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


def paper_model_config():
  """HGR's `config.model`, the paper's and its official code's values."""
  return ml_collections.ConfigDict(dict(
      word_dim=300,  # Paper: 300-d words, initialised from GloVe.
      hidden_size=1024,  # Paper: the joint embedding's width.
      num_roles=16,  # Official code: size of the role embedding table.
      gcn_layers=1,  # Official code: one attention-GCN layer.
      # Official code: dropout on words, frames and GCN nodes.
      text_dropout=0.2,
      video_dropout=0.2,
      gcn_dropout=0.5,
      attention_sigma=4.0,  # Official code: phrase-to-frame softmax scale.
      margin=0.2,  # Paper: the VSE++ hinge on the hardest negative.
      # Official code: other captions of a positive's video in the batch are
      # negatives too (True leaves them out of the hinge).
      mask_same_video_negatives=False,
      # Official code: the hinge on the fused score; per-level hinges off.
      loss_weights=ml_collections.ConfigDict(
          dict(fused=1.0, **{'global': 0.0}, verb=0.0, noun=0.0)),
      # Official code: float32 products. 'bfloat16' (ours) multiplies the
      # BiGRU in bfloat16 with float32 accumulation; 'auto', bfloat16 where
      # the hardware has it natively (hgr_jax/platform.py).
      gru_matmul_dtype='float32',
      # Ours: 'packed' (tuned for XLA:CPU), 'plain' (one scan, for GPU and
      # TPU) or 'auto' (packed on CPU, plain elsewhere); the same function.
      gru_implementation='auto',
  ))
