"""HANet: Hierarchical Alignment Network (Wu et al., ACM MM 2021).

HGR's encoders plus concept classifiers on frames and words. Videos and
captions are matched at three levels: global (event vector vs sentence node),
local (clips gathered around the video's most probable concepts vs the verb
and noun nodes after the GCN) and individual (frames vs phrase vectors before
the role embedding), and their concept probabilities by soft Jaccard. The
details follow the official code (github.com/Roc-Ng/HANet).
"""

from typing import Any, Callable, Mapping, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from hgr_jax import losses
from hgr_jax.models import concept_pooling
from hgr_jax.models import dual_encoder
from hgr_jax.models import hgr
from hgr_jax.models import initializers
from hgr_jax.models import layers
from hgr_jax.models import matching
from hgr_jax.models import registry
from hgr_jax.models import search_hooks
from hgr_jax.models import text_encoders
from hgr_jax.models import video_encoders


class ConceptClassifier(nn.Module):
  """Temporal convolution -> batch norm -> sigmoid: per-position concepts."""
  num_concepts: int
  kernel_size: int

  @nn.compact
  def __call__(self, x, mask, train):
    """(batch, length, dim), mask (batch, length) -> (batch, length, concepts).

    Padded positions are zeroed before the convolution (so they act as its
    zero padding) and left out of the batch statistics, so padding changes
    no valid output.
    """
    x = jnp.where(mask[..., None], x, 0.0)
    logits = initializers.torch_conv1d(self.num_concepts, self.kernel_size,
                                       x.shape[-1], name='conv')(x)
    # PyTorch's BatchNorm1d defaults, as the official code.
    logits = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                          epsilon=initializers.TORCH_NORM_EPSILON,
                          name='norm')(logits,
                                                     mask=mask[..., None])
    return jax.nn.sigmoid(logits)


class SqueezeExcitation(nn.Module):
  """Channel gates from the mean over valid frames (Hu et al., CVPR 2018)."""
  reduction: int = 16

  @nn.compact
  def __call__(self, x, mask):
    """x: (batch, frames, dim), mask: (batch, frames) -> recalibrated x."""
    dim = x.shape[-1]
    squeezed = layers.masked_mean(x, mask)
    hidden = nn.relu(initializers.torch_dense(
        dim // self.reduction, dim, use_bias=False, name='squeeze')(squeezed))
    gates = jax.nn.sigmoid(initializers.torch_dense(
        dim, dim // self.reduction, use_bias=False, name='excite')(hidden))
    return x * gates[:, None, :]


class ConceptVideoEncoder(nn.Module):
  """HANet video side: HGR's three streams, frame concepts and concept clips."""
  embed_size: int
  dropout: float
  num_verb_concepts: int
  num_noun_concepts: int
  num_action_clips: int
  num_entity_clips: int

  @nn.compact
  def __call__(self, frames, frame_mask, train):
    """frames: (batch, frames, dim), frame_mask: (batch, frames) bool.

    Returns:
      HGR's event, actions, entities and frame_mask, plus action_clips
      (batch, action clips, embed), entity_clips (batch, entity clips, embed),
      verb_concepts (batch, verb concepts) and noun_concepts (batch, noun
      concepts) probabilities.
    """
    encoded = video_encoders.MultiLevelVideoEncoder(
        self.embed_size, self.dropout, name='streams')(frames, frame_mask,
                                                       train)
    actions, entities = encoded['actions'], encoded['entities']
    verb_frames = ConceptClassifier(self.num_verb_concepts, 5,
                                    name='verb_classifier')(actions,
                                                            frame_mask, train)
    noun_frames = ConceptClassifier(self.num_noun_concepts, 1,
                                    name='noun_classifier')(entities,
                                                            frame_mask, train)
    verb_probs = concept_pooling.topk_mean_pool(verb_frames, frame_mask)
    noun_probs = concept_pooling.topk_mean_pool(noun_frames, frame_mask)

    # Which frames form a clip is a discrete choice: no gradient through it.
    _, top_verbs = jax.lax.top_k(jax.lax.stop_gradient(verb_probs),
                                 self.num_action_clips)
    _, top_nouns = jax.lax.top_k(jax.lax.stop_gradient(noun_probs),
                                 self.num_entity_clips)
    action_weights = concept_pooling.action_clip_weights(
        jax.lax.stop_gradient(verb_frames), top_verbs, frame_mask)
    entity_weights = concept_pooling.entity_clip_weights(
        jax.lax.stop_gradient(noun_frames), top_nouns, frame_mask)
    recalibrated_actions = SqueezeExcitation(name='action_se')(actions,
                                                               frame_mask)
    recalibrated_entities = SqueezeExcitation(name='entity_se')(entities,
                                                                frame_mask)
    return {
        **encoded,
        'action_clips': jnp.einsum('bcf,bfd->bcd', action_weights,
                                   recalibrated_actions),
        'entity_clips': jnp.einsum('bcf,bfd->bcd', entity_weights,
                                   recalibrated_entities),
        'verb_concepts': verb_probs,
        'noun_concepts': noun_probs,
    }


class ConceptTextEncoder(nn.Module):
  """HANet text side: HGR's role graph encoder plus word concepts."""
  vocab_size: int
  word_dim: int
  hidden_size: int
  num_roles: int
  gcn_layers: int
  text_dropout: float
  gcn_dropout: float
  num_verb_concepts: int
  num_noun_concepts: int
  # None: the official uniform word embedding
  # (initializers.torch_word_embedding).
  embedding_init: Optional[Callable[..., Any]] = None
  gru_matmul_dtype: str = 'float32'
  # 'plain', 'packed' (XLA:CPU) or 'auto' (by backend), see bigru.BiGRU.
  gru_implementation: str = 'auto'

  @nn.compact
  def __call__(self, text, train):
    """text: caption dict as `RoleGraphEncoder` takes it.

    Returns:
      `RoleGraphEncoder`'s outputs with verb_phrases and noun_phrases, plus
      verb_concepts (batch, verb concepts) and noun_concepts (batch, noun
      concepts) probabilities.
    """
    encoded = text_encoders.RoleGraphEncoder(
        self.vocab_size, self.word_dim, self.hidden_size, self.num_roles,
        self.gcn_layers, self.text_dropout, self.gcn_dropout,
        self.embedding_init, word_level=True,
        gru_matmul_dtype=self.gru_matmul_dtype,
        gru_implementation=self.gru_implementation, name='graph')(text, train)
    words, mask = encoded.pop('words'), encoded.pop('word_mask')
    for kind, size in (('verb', self.num_verb_concepts),
                       ('noun', self.num_noun_concepts)):
      probs = ConceptClassifier(size, 1, name=f'{kind}_classifier')(
          words, mask, train)
      encoded[f'{kind}_concepts'] = concept_pooling.topk_mean_pool(probs, mask)
    return encoded


@registry.register('hanet')
class HANet(dual_encoder.DualEncoder):
  """HGR's encoders with concept classifiers and three alignment levels."""
  vocab_size: int
  word_dim: int = 300
  hidden_size: int = 1024
  num_roles: int = 16
  gcn_layers: int = 1
  text_dropout: float = 0.2
  gcn_dropout: float = 0.5
  video_dropout: float = 0.2
  attention_sigma: float = 4.0
  num_verb_concepts: int = 512
  num_noun_concepts: int = 1024
  num_action_clips: int = 10
  num_entity_clips: int = 20
  concept_bce_weight: float = 0.01
  margin: float = 0.2
  loss_weights: Mapping[str, float] = flax.core.FrozenDict(matching=1.0,
                                                           concept=0.1)
  # False (official): other captions of the positive's video are negatives.
  mask_same_video_negatives: bool = False
  # None: the official uniform word embedding
  # (initializers.torch_word_embedding).
  embedding_init: Optional[Callable[..., Any]] = None
  # Operand type of the BiGRU's products: 'bfloat16' (float32
  # accumulation) is faster where the backend multiplies bfloat16 natively.
  gru_matmul_dtype: str = 'float32'
  # 'plain', 'packed' (XLA:CPU) or 'auto' (by backend), see bigru.BiGRU.
  gru_implementation: str = 'auto'

  @staticmethod
  def paper_config():
    """HANet (Wu et al., ACM MM 2021) and its official code (Roc-Ng/HANet,
    data/<dataset>/model.json): HGR's values plus the concepts.

    HANet trains the hinge on the mean of its five embedding scores plus a
    tenth of the hinge on the mean of its two concept (Jaccard) scores,
    plus 0.01 x each of four masked concept BCE losses; it ranks by the
    mean of the two means.
    """
    model = hgr.paper_model_config()
    model.update(dict(
        num_verb_concepts=512,  # Most frequent training verbs.
        num_noun_concepts=1024,  # Most frequent training nouns.
        num_action_clips=10,  # Top video verb concepts -> action clips.
        num_entity_clips=20,  # Top video noun concepts -> entity clips.
        concept_bce_weight=0.01,
    ))
    model.loss_weights = ml_collections.ConfigDict(
        dict(fused=0.0, **{'global': 0.0}, verb=0.0, noun=0.0, matching=1.0,
             concept=0.1))
    return ml_collections.ConfigDict(dict(model=model))

  def setup(self):
    self.video_encoder = ConceptVideoEncoder(
        self.hidden_size, self.video_dropout, self.num_verb_concepts,
        self.num_noun_concepts, self.num_action_clips, self.num_entity_clips)
    self.text_encoder = ConceptTextEncoder(
        self.vocab_size, self.word_dim, self.hidden_size, self.num_roles,
        self.gcn_layers, self.text_dropout, self.gcn_dropout,
        self.num_verb_concepts, self.num_noun_concepts, self.embedding_init,
        self.gru_matmul_dtype, self.gru_implementation)

  @nn.nowrap
  def search_hooks(self):
    """Two-stage on the event/sentence cosine, re-ranked by `scores`;
    --explain shows its individual levels (phrases over frames): its local
    levels match clips."""
    return search_hooks.SearchHooks(
        global_keys=('event', 'sentence'),
        alignments={
            'verb': search_hooks.Alignment('actions', 'verb_phrases'),
            'noun': search_hooks.Alignment('entities', 'noun_phrases')})

  @nn.nowrap
  def extra_train_features(self):
    """The caption concept labels and masks that the BCE losses need."""
    return {'concept_labels': dict(num_verb_concepts=self.num_verb_concepts,
                                   num_noun_concepts=self.num_noun_concepts)}

  def scores(self, video, text, matmul_dtype=None):
    """Encoded videos x encoded captions -> dict of (videos, captions) scores.

    'matching' is the mean of the five embedding levels (trained with the
    hinge), 'concept' the mean of the two Jaccard scores (trained with a
    tenth of it), 'fused' their mean (ranking), as the official code.
    """
    sigma = self.attention_sigma
    all_clips = lambda clips: jnp.ones(clips.shape[:2], bool)
    scores = {
        'global': matching.cosine_matrix(video['event'], text['sentence'],
                                         matmul_dtype),
        'verb': matching.phrase_frame_scores(
            video['action_clips'], all_clips(video['action_clips']),
            text['verbs'], text['verb_mask'], sigma, matmul_dtype),
        'noun': matching.phrase_frame_scores(
            video['entity_clips'], all_clips(video['entity_clips']),
            text['nouns'], text['noun_mask'], sigma, matmul_dtype),
        'individual_verb': matching.phrase_frame_scores(
            video['actions'], video['frame_mask'], text['verb_phrases'],
            text['verb_mask'], sigma, matmul_dtype),
        'individual_noun': matching.phrase_frame_scores(
            video['entities'], video['frame_mask'], text['noun_phrases'],
            text['noun_mask'], sigma, matmul_dtype),
        'concept_verb': matching.jaccard_matrix(video['verb_concepts'],
                                                text['verb_concepts']),
        'concept_noun': matching.jaccard_matrix(video['noun_concepts'],
                                                text['noun_concepts']),
    }
    scores['matching'] = sum(scores[level] for level in (
        'global', 'verb', 'noun', 'individual_verb', 'individual_noun')) / 5
    scores['concept'] = (scores['concept_verb'] + scores['concept_noun']) / 2
    scores['fused'] = (scores['matching'] + scores['concept']) / 2
    return scores

  def loss(self, outputs, batch):
    """The hinge of `DualEncoder.loss` plus the four masked concept BCE
    losses (videos and captions, verbs and nouns) against the caption's
    concept labels, each weighted by concept_bce_weight."""
    total, terms = super().loss(outputs, batch)
    bce = {
        f'{side}_{kind}_bce': self.concept_bce_weight *
        losses.masked_binary_cross_entropy(
            outputs[side][f'{kind}_concepts'],
            batch[f'{kind}_concept_labels'], batch[f'{kind}_concept_mask'])
        for side in ('video', 'text') for kind in ('verb', 'noun')
    }
    return total + sum(bce.values()), {**terms, **bce}
