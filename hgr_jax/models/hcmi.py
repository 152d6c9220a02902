"""HCMI: hierarchical cross-modal interactions (Jiang et al., 2022,
arXiv 2204.03382, "Tencent Text-Video Retrieval").

Frames are grouped into clips and clips into a video vector; words into
phrases and phrases into a sentence vector. Videos and captions are matched
at three levels: frame-word and clip-phrase by token-wise interaction,
video-sentence by cosine. Training: symmetric InfoNCE at each level with a
learned temperature, adaptive label denoising (ALD: two frame samplings of
each video decide which other videos count as positives) and marginal sample
enhancement (MSE: a hinge on the hardest negatives). No official code exists;
where the paper is silent the choices are ours (see configs/synthetic.py).
"""

import math
from typing import Any, Callable, Mapping, Optional, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hgr_jax import contrastive_losses
from hgr_jax import losses
from hgr_jax.models import aggregation
from hgr_jax.models import clip
from hgr_jax.models import dual_encoder
from hgr_jax.models import matching
from hgr_jax.models import registry
from hgr_jax.models import search_hooks
from hgr_jax.models import text_encoders

LEVELS = ('frame_word', 'clip_phrase', 'video_sentence')


def _pool(pooling, kind, num_heads, dropout, name):
  """(batch, tokens, width) -> (batch, width), all tokens valid: one learned
  query's `_aggregate` module of `kind` ('attention'), or the tokens' mean
  ('mean')."""
  if pooling == 'mean':
    return lambda tokens, train: jnp.mean(tokens, axis=1)
  block = _aggregate(kind, 1, num_heads, dropout, False, name)
  return lambda tokens, train: block(
      tokens, jnp.ones(tokens.shape[:2], bool), train)[:, 0]


def _aggregate(kind, num_queries, num_heads, dropout, segments, name):
  """The tokens -> `num_queries` tokens module: 'transformer'
  (`aggregation.AggregationBlock`) or 'centroid'
  (`aggregation.AttentionCentroids`)."""
  if kind == 'centroid':
    return aggregation.AttentionCentroids(num_queries, segments, name=name)
  return aggregation.AggregationBlock(num_queries, num_heads, dropout,
                                      segments, name=name)


class HierarchicalVideoEncoder(nn.Module):
  """Frames -> frame tokens -> clip tokens -> video vector."""
  width: int
  num_heads: int
  temporal_layers: int
  num_clips: int
  dropout: float
  pooling: str = 'attention'  # Clip tokens -> video vector, see `_pool`.
  # Clip k aggregates only the k-th temporal segment of the frames.
  clip_segments: bool = False
  aggregation: str = 'transformer'  # Frames -> clips, see `_aggregate`.

  @nn.compact
  def __call__(self, frames, frame_mask, train):
    """frames: (batch, frames, feature dim), frame_mask: (batch, frames).

    Returns:
      dict with frames (batch, frames, width), frame_mask, frame_weights
      (batch, frames), clips (batch, clips, width), clip_weights
      (batch, clips) and video (batch, width).
    """
    tokens = nn.Dense(self.width, name='project')(frames)
    positions = self.param('positions', nn.initializers.normal(stddev=0.02),
                           (frames.shape[1], self.width))
    tokens = nn.Dropout(self.dropout, deterministic=not train)(
        tokens + positions)
    for i in range(self.temporal_layers):
      tokens = aggregation.TransformerLayer(
          self.num_heads, self.dropout, name=f'temporal_{i}')(
              tokens, frame_mask, train)
    clips = _aggregate(self.aggregation, self.num_clips, self.num_heads,
                       self.dropout, self.clip_segments,
                       'frames_to_clips')(tokens, frame_mask, train)
    all_clips = jnp.ones(clips.shape[:2], bool)
    video = _pool(self.pooling, self.aggregation, self.num_heads,
                  self.dropout, 'clips_to_video')(clips, train)
    return {
        'frames': tokens,
        'frame_mask': frame_mask,
        'frame_weights': aggregation.TokenWeights(name='frame_weights')(
            tokens, frame_mask),
        'clips': clips,
        'clip_weights': aggregation.TokenWeights(name='clip_weights')(
            clips, all_clips),
        'video': video,
    }


class HierarchicalTextEncoder(nn.Module):
  """Word states -> word tokens -> phrase tokens -> sentence vector.

  `word_encoder` maps (token_ids, lengths, train) to (batch, words, any dim)
  states, zero on padding; it is a submodule so that another encoder (e.g. a
  CLIP text tower) can take the BiGRU's place.
  """
  word_encoder: nn.Module
  width: int
  num_heads: int
  num_phrases: int
  dropout: float
  pooling: str = 'attention'  # Phrase tokens -> sentence, see `_pool`.
  aggregation: str = 'transformer'  # Words -> phrases, see `_aggregate`.

  @nn.compact
  def __call__(self, text, train):
    """text: dict with token_ids (batch, words) and length (batch,).

    Returns:
      dict with words (batch, words, width), word_mask, word_weights
      (batch, words), phrases (batch, phrases, width), phrase_weights
      (batch, phrases) and sentence (batch, width).
    """
    token_ids, lengths = text['token_ids'], text['length']
    mask = text_encoders.word_mask(token_ids, lengths)
    words = nn.Dense(self.width, name='project')(
        self.word_encoder(token_ids, lengths, train))
    phrases = _aggregate(self.aggregation, self.num_phrases, self.num_heads,
                         self.dropout, False, 'words_to_phrases')(
                             words, mask, train)
    all_phrases = jnp.ones(phrases.shape[:2], bool)
    sentence = _pool(self.pooling, self.aggregation, self.num_heads,
                     self.dropout, 'phrases_to_sentence')(phrases, train)
    return {
        'words': words,
        'word_mask': mask,
        'word_weights': aggregation.TokenWeights(name='word_weights')(
            words, mask),
        'phrases': phrases,
        'phrase_weights': aggregation.TokenWeights(name='phrase_weights')(
            phrases, all_phrases),
        'sentence': sentence,
    }


def dual_softmax(scores, temperature):
  """Dual-softmax re-ranking (CAMoE, Cheng et al., 2021) of a full matrix.

  Each score is multiplied by its softmax over the captions of its video,
  a prior that demotes a video for captions it matches less than others.

  Args:
    scores: (videos, captions) NumPy array, the whole split.
    temperature: the softmax's inverse temperature (100 in CAMoE).

  Returns:
    (videos, captions) re-ranked scores.
  """
  logits = temperature * scores
  logits = logits - logits.max(axis=1, keepdims=True)
  prior = np.exp(logits)
  return scores * prior / prior.sum(axis=1, keepdims=True)


@registry.register('hcmi')
class HCMI(dual_encoder.DualEncoder):
  """Hierarchical encoders, three matching levels, InfoNCE + ALD + MSE."""
  vocab_size: int
  word_dim: int = 300
  hidden_size: int = 512
  text_dropout: float = 0.1
  video_dropout: float = 0.1
  num_heads: int = 8
  temporal_layers: int = 1
  num_clips: int = 4
  num_phrases: int = 4
  levels: Sequence[str] = LEVELS
  loss_weights: Mapping[str, float] = flax.core.FrozenDict(
      frame_word=1.0, clip_phrase=1.0, video_sentence=1.0)
  use_ald: bool = True
  same_video_positive: bool = True
  mse_weight: float = 1.0
  margin: float = 0.2  # theta of L_mse.
  initial_temperature: float = 0.07
  max_logit_scale: float = 100.0
  # One learned temperature per level instead of one for all.
  per_level_temperature: bool = False
  # Adam moves a parameter by about the learning rate per step, so the log
  # of the logit scale moves that fast times this factor (the parameter
  # is stored divided by it).
  temperature_lr_multiplier: float = 1.0
  # 'info_nce' (the paper), or 'hinge': the other models' max-violation
  # hinge (margin `margin`) at each level instead.
  level_loss: str = 'info_nce'
  # Token-wise interaction's best match: None, the max cosine (DRL); a
  # number, the cosines weighted by their softmax at this inverse
  # temperature.
  match_softmax_scale: Optional[float] = None
  # Clip tokens -> video vector and phrase tokens -> sentence vector:
  # 'attention' (an `aggregation` module with one query) or 'mean'.
  global_pooling: str = 'attention'
  # Clip k aggregates only the frames of the k-th of `num_clips` temporal
  # segments (False: every query attends over all frames).
  clip_segments: bool = False
  # Frames -> clips and words -> phrases: 'transformer' (learned queries
  # attend, multi-head, then a feed-forward layer, post-norm) or
  # 'centroid' (each query's attention-weighted mean of the tokens).
  aggregation: str = 'transformer'
  # Weights of the levels in the fused (ranking) score, normalised over
  # the enabled levels.
  fusion_weights: Mapping[str, float] = flax.core.FrozenDict(
      frame_word=1.0, clip_phrase=1.0, video_sentence=1.0)
  # True: each level's weight is also multiplied by its learned logit
  # scale, so the fused score is the levels' InfoNCE logits averaged (a
  # level whose scores spread less, at a lower temperature, counts more).
  fuse_logits: bool = False
  dual_softmax: bool = False
  dual_softmax_temperature: float = 100.0
  embedding_init: Callable[..., Any] = nn.initializers.normal(stddev=0.1)
  # Sizes of a pretrained CLIP text tower, the word encoder instead of the
  # BiGRU (models.create_model sets it from config.text_encoder).
  clip_text: Optional[clip.TowerSizes] = None
  # Operand type of the BiGRU's products: 'bfloat16' (float32
  # accumulation) is faster where the backend multiplies bfloat16 natively.
  gru_matmul_dtype: str = 'float32'
  # 'plain', 'packed' (XLA:CPU) or 'auto' (by backend), see bigru.BiGRU.
  gru_implementation: str = 'auto'

  @staticmethod
  def paper_config():
    """HCMI (Jiang et al., 2022, arXiv 2204.03382).

    The paper builds on CLIP and publishes no code; it fixes the hierarchy
    (frames -> clips -> video, words -> phrases -> sentence), the three
    contrastive levels, ALD's positive rule and L_mse. Every value it does
    not give is ours and marked so; the word size, width and dropout are
    HGR's (ours for HCMI). docs/hcmi.md.
    """
    model = ml_collections.ConfigDict(dict(
        word_dim=300,  # Ours: HGR's words.
        hidden_size=1024,  # Ours: HGR's width.
        text_dropout=0.2,  # Ours: HGR's dropout.
        video_dropout=0.2,
        num_heads=8,  # Ours: attention heads of every block.
        # Ours: transformer layers over the frame tokens before the frames
        # -> clips aggregation (itself self-attention + feed-forward, as
        # the paper).
        temporal_layers=1,
        num_clips=4,  # Ours (N_c < N_f): clip tokens per video.
        num_phrases=4,  # Ours (N_p): phrase tokens per caption.
        # Matching levels; 'fused' (ranking) is their mean (ours).
        levels=('frame_word', 'clip_phrase', 'video_sentence'),
        # Ours: weights of the levels' InfoNCE losses.
        loss_weights=ml_collections.ConfigDict(
            dict(frame_word=1.0, clip_phrase=1.0, video_sentence=1.0)),
        # Paper: ALD on. Ours: its positives are the InfoNCE targets of
        # every level, spread evenly over them.
        use_ald=True,
        # Ours: another caption of the same video in the batch is a
        # positive.
        same_video_positive=True,
        mse_weight=1.0,  # Ours: lambda of L_mse.
        margin=0.2,  # Ours: theta of L_mse (the HGR/VSE++ margin).
        # CLIP's initial temperature and its cap of the logit scale.
        initial_temperature=0.07,
        max_logit_scale=100.0,
        # Paper: InfoNCE at each level ('hinge': the max-violation hinge of
        # the other models, margin `margin`).
        level_loss='info_nce',
        # Paper: one learned temperature (CLIP's); ours: its learning rate.
        per_level_temperature=False,
        temperature_lr_multiplier=1.0,
        # DRL's max over tokens (None); a number: the softmax-weighted best
        # match at that inverse temperature (ours).
        match_softmax_scale=ml_collections.config_dict.placeholder(float),
        # Paper: "self-attention + feed-forward" for frames -> clips and
        # words -> phrases ('transformer'), and for the video and sentence
        # vectors ('attention'); every clip query sees all frames.
        aggregation='transformer',
        global_pooling='attention',
        clip_segments=False,
        # Ours: the fused (ranking) score is the levels' weighted mean.
        fusion_weights=ml_collections.ConfigDict(
            dict(frame_word=1.0, clip_phrase=1.0, video_sentence=1.0)),
        fuse_logits=False,
        # Paper: dual-softmax re-ranking at test time; off by default here.
        # 100: CAMoE's inverse temperature.
        dual_softmax=False,
        dual_softmax_temperature=100.0,
        gru_matmul_dtype='float32',  # As HGR's word encoder.
        gru_implementation='auto',
    ))
    # Ours: the two views draw frames from all of a video's frames every
    # epoch, which the in-memory global pair order does not keep.
    return ml_collections.ConfigDict(dict(model=model,
                                          pair_order='video_buffer'))

  def setup(self):
    unknown = set(self.levels) - set(LEVELS)
    if unknown or not self.levels:
      raise ValueError(f'config.model.levels={tuple(self.levels)!r}: use a '
                       f'non-empty subset of {LEVELS}.')
    for field, value, allowed in (
        ('level_loss', self.level_loss, ('info_nce', 'hinge')),
        ('global_pooling', self.global_pooling, ('attention', 'mean')),
        ('aggregation', self.aggregation, ('transformer', 'centroid'))):
      if value not in allowed:
        raise ValueError(f'config.model.{field}={value!r}: use one of '
                         f'{allowed}.')
    if not sum(self.fusion_weights.get(level, 0.0) for level in self.levels):
      raise ValueError(f'config.model.fusion_weights={dict(self.fusion_weights)}'
                       ' gives every enabled level weight 0: give one a '
                       'positive weight.')
    self.video_encoder = HierarchicalVideoEncoder(
        self.hidden_size, self.num_heads, self.temporal_layers,
        self.num_clips, self.video_dropout, self.global_pooling,
        self.clip_segments, self.aggregation)
    self.word_encoder = text_encoders.word_states(
        self.clip_text, self.vocab_size, self.word_dim, self.hidden_size,
        self.text_dropout, self.embedding_init, self.gru_matmul_dtype,
        self.gru_implementation)
    self.text_encoder = HierarchicalTextEncoder(
        self.word_encoder, self.hidden_size, self.num_heads,
        self.num_phrases, self.text_dropout, self.global_pooling,
        self.aggregation)
    self.log_logit_scale = self.param(
        'log_logit_scale', nn.initializers.constant(
            math.log(1 / self.initial_temperature)
            / self.temperature_lr_multiplier),
        (len(self.levels),) if self.per_level_temperature else ())

  def scores(self, video, text, matmul_dtype=None):
    """Encoded videos x encoded captions -> dict of (videos, captions) scores:
    the enabled levels and 'fused', their `fusion_weights` mean."""
    scores = {}
    if 'frame_word' in self.levels:
      scores['frame_word'] = matching.token_wise_scores(
          video['frames'], video['frame_mask'], video['frame_weights'],
          text['words'], text['word_mask'], text['word_weights'],
          matmul_dtype, self.match_softmax_scale)
    if 'clip_phrase' in self.levels:
      scores['clip_phrase'] = matching.token_wise_scores(
          video['clips'], jnp.ones(video['clips'].shape[:2], bool),
          video['clip_weights'], text['phrases'],
          jnp.ones(text['phrases'].shape[:2], bool), text['phrase_weights'],
          matmul_dtype, self.match_softmax_scale)
    if 'video_sentence' in self.levels:
      scores['video_sentence'] = matching.cosine_matrix(
          video['video'], text['sentence'], matmul_dtype)
    weights = {level: self.fusion_weights.get(level, 0.0)
               for level in scores}
    if self.fuse_logits:
      scales = self.level_logit_scales()
      weights = {level: weight * jax.lax.stop_gradient(scales[level])
                 for level, weight in weights.items()}
    scores['fused'] = sum(weights[level] * value
                          for level, value in scores.items()) / sum(
                              weights.values())
    return scores

  @nn.nowrap
  def search_hooks(self):
    """Queries need no role graph (the text encoder reads the tokens); the
    first stage is the video/sentence level. Its phrases are learned slots
    without words of their own, so --explain numbers them."""
    return search_hooks.SearchHooks(
        uses_role_graph=False, global_keys=('video', 'sentence'),
        alignments={
            'word': search_hooks.Alignment('frames', 'words',
                                           attention=False),
            'phrase': search_hooks.Alignment('clips', 'phrases', unit='clip',
                                             attention=False)})

  @nn.nowrap
  def extra_train_features(self):
    """A second random frame sampling of each video, for ALD. Both views
    are sampled at random even without ALD, so the ablation changes only
    the loss."""
    return {'frame_views': {}}

  @nn.nowrap
  def rerank(self, scores):
    """Evaluation-time re-ranking of the split's full score matrices:
    dual softmax on 'fused' when enabled."""
    if not self.dual_softmax:
      return scores
    return {**scores, 'fused': dual_softmax(scores['fused'],
                                            self.dual_softmax_temperature)}

  def logit_scale(self):
    """The learned inverse temperature, capped as CLIP's: a scalar, or one
    per enabled level (in `levels` order) with `per_level_temperature`."""
    return jnp.minimum(
        jnp.exp(self.temperature_lr_multiplier * self.log_logit_scale),
        self.max_logit_scale)

  def level_logit_scales(self):
    """{level: its logit scale} for the enabled levels."""
    scales = self.logit_scale()
    if self.per_level_temperature:
      return dict(zip(self.levels, scales))
    return {level: scales for level in self.levels}

  def train_outputs(self, batch, train=True):
    """Scores of the batch's pairs, the video and sentence vectors, the
    second view's video vectors (with ALD) and the logit scale."""
    video = self.encode_video(batch['frames'], batch['frame_mask'], train)
    text = self.encode_text(batch, train)
    outputs = {'scores': self.scores(video, text),
               'video': video['video'], 'sentence': text['sentence'],
               'logit_scale': self.logit_scale()}
    if self.use_ald:
      outputs['video_view2'] = self.encode_video(
          batch['frames_view2'], batch['frame_mask'], train)['video']
    return outputs

  def loss(self, outputs, batch):
    """InfoNCE (or the hinge, `level_loss`) at each level, ALD targets, plus
    mse_weight x L_mse.

    Returns:
      (total, terms): terms are the per-level losses, 'mse',
      'ald_positives', the mean number of positives per video (1 without
      ALD and repeated videos), and the logit scales (not losses):
      'logit_scale', or 'logit_scale_<level>' per level.
    """
    same_video = batch['video_key'][:, None] == batch['video_key'][None, :]
    positives = jnp.eye(same_video.shape[0], dtype=bool)
    if self.same_video_positive:
      positives = positives | same_video
    if self.use_ald:
      positives = positives | contrastive_losses.ald_positives(
          jax.lax.stop_gradient(outputs['video']),
          jax.lax.stop_gradient(outputs['video_view2']))
    weights = self.loss_weights
    scales = outputs['logit_scale']
    scales = (dict(zip(self.levels, scales)) if self.per_level_temperature
              else {level: scales for level in self.levels})
    terms = {}
    for level in self.levels:
      if not weights.get(level, 0.0):
        continue
      if self.level_loss == 'hinge':
        terms[level] = losses.hardest_negative_hinge(
            outputs['scores'][level], positives | same_video, self.margin)
      else:
        terms[level] = contrastive_losses.symmetric_info_nce(
            outputs['scores'][level], positives, scales[level])
    total = sum(weights[level] * value for level, value in terms.items())
    if self.mse_weight:
      # A caption of the same video is never a negative.
      terms['mse'] = contrastive_losses.marginal_sample_enhancement(
          matching.cosine_matrix(outputs['video'], outputs['sentence']),
          positives | same_video, self.margin)
      total = total + self.mse_weight * terms['mse']
    terms['ald_positives'] = jnp.mean(jnp.sum(positives, axis=1))
    # Logged, not losses: where the temperatures go.
    if self.per_level_temperature:
      terms.update({f'logit_scale_{level}': scale
                    for level, scale in scales.items()})
    else:
      terms['logit_scale'] = outputs['logit_scale']
    return total, terms
