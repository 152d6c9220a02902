"""VSE++ global baseline (Faghri et al., BMVC 2018), as the HGR paper runs it."""

from typing import Any, Callable, Mapping, Optional

import flax
import ml_collections

from hgr_jax.models import clip
from hgr_jax.models import dual_encoder
from hgr_jax.models import hgr
from hgr_jax.models import matching
from hgr_jax.models import registry
from hgr_jax.models import search_hooks
from hgr_jax.models import text_encoders
from hgr_jax.models import video_encoders


@registry.register('vsepp')
class VSEPP(dual_encoder.DualEncoder):
  """Mean-pooled frames -> linear; mean-pooled BiGRU text; cosine similarity."""
  vocab_size: int
  word_dim: int = 300
  hidden_size: int = 1024
  text_dropout: float = 0.2
  video_dropout: float = 0.2
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
    """VSE++ as the HGR code's baseline (cshizhe/hgr_v2t): HGR's encoder
    sizes, a global BiGRU text side, batch 128."""
    hgr_model = hgr.paper_model_config()
    # HGR's values of the fields VSE++ has (it has no role graph).
    model = ml_collections.ConfigDict({
        field: hgr_model[field] for field in (
            'word_dim', 'hidden_size', 'text_dropout', 'video_dropout',
            'margin', 'mask_same_video_negatives', 'loss_weights',
            'gru_matmul_dtype', 'gru_implementation')})
    # Official code: the baseline trains on batches of 128.
    return ml_collections.ConfigDict(dict(model=model, batch_size=128))

  def setup(self):
    self.video_encoder = video_encoders.MeanPoolVideoEncoder(
        self.hidden_size, self.video_dropout)
    self.text_encoder = text_encoders.MeanPoolTextEncoder(
        self.vocab_size, self.word_dim, self.hidden_size, self.text_dropout,
        self.embedding_init, clip_text=self.clip_text,
        gru_matmul_dtype=self.gru_matmul_dtype,
        gru_implementation=self.gru_implementation)

  def scores(self, video, text, matmul_dtype=None):
    """Encoded videos x encoded captions -> dict of (videos, captions) scores."""
    similarity = matching.cosine_matrix(video['event'], text['sentence'],
                                        matmul_dtype)
    return {'global': similarity, 'fused': similarity}

  @flax.linen.nowrap
  def search_hooks(self):
    """Its one score is the global cosine: the first stage."""
    return search_hooks.SearchHooks(uses_role_graph=False,
                                    global_keys=('event', 'sentence'))
