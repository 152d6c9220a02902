"""Text encoders: the HGR role-graph encoder and the VSE++ mean-pooled BiGRU,
over word states of a BiGRU or of a pretrained CLIP text tower."""

from typing import Any, Callable, Optional

import flax.linen as nn
import jax.numpy as jnp

from hgr_jax.models import bigru
from hgr_jax.models import clip
from hgr_jax.models import gcn
from hgr_jax.models import initializers
from hgr_jax.models import layers


class WordStates(nn.Module):
  """Word embedding -> dropout -> BiGRU (forward and backward averaged)."""
  vocab_size: int
  word_dim: int
  hidden_size: int
  dropout: float
  # None: the official uniform word embedding
  # (initializers.torch_word_embedding).
  embedding_init: Optional[Callable[..., Any]] = None
  # Operand type of the BiGRU's products ('float32' or 'bfloat16'), see
  # bigru.BiGRU.
  gru_matmul_dtype: str = 'float32'
  # 'plain', 'packed' (XLA:CPU) or 'auto' (by backend), see bigru.BiGRU.
  gru_implementation: str = 'auto'

  @nn.compact
  def __call__(self, token_ids, lengths, train):
    """token_ids: (batch, words), lengths: (batch,) -> (batch, words, hidden)."""
    embedding_init = (self.embedding_init or
                      initializers.torch_word_embedding(self.word_dim))
    embedded = nn.Embed(self.vocab_size, self.word_dim,
                        embedding_init=embedding_init,
                        name='embedding')(token_ids)
    embedded = nn.Dropout(self.dropout, deterministic=not train)(embedded)
    return bigru.BiGRU(self.hidden_size, matmul_dtype=self.gru_matmul_dtype,
                       implementation=self.gru_implementation,
                       name='bigru')(embedded, lengths)


def word_mask(token_ids, lengths):
  """(batch, words) bool mask of the valid words."""
  return jnp.arange(token_ids.shape[1])[None, :] < lengths[:, None]


# The name of the pretrained tower's module wherever a model holds it:
# `hgr_jax.clip_checkpoint.replace_towers` and the optimiser find it by it.
CLIP_TOWER = 'clip_text_tower'


class ClipWordStates(nn.Module):
  """CLIP's text tower -> dropout -> linear to hidden_size, zero on padding.

  The tokens are the checkpoint's BPE ids with start and end of text
  (`data_pipelines.tokenizers.ClipTokenizer`); every token's state is a
  word state, the end-of-text one summarising the caption.
  """
  sizes: clip.TowerSizes
  hidden_size: int
  dropout: float

  @nn.compact
  def __call__(self, token_ids, lengths, train):
    """token_ids: (batch, tokens), lengths: (batch,) -> (batch, tokens,
    hidden)."""
    states, _ = clip.TextTower(self.sizes, name=CLIP_TOWER)(
        token_ids, jnp.maximum(lengths - 1, 0))
    states = nn.Dropout(self.dropout, deterministic=not train)(states)
    states = initializers.torch_dense(self.hidden_size, self.sizes.width,
                                      name='project')(states)
    return states * word_mask(token_ids, lengths)[..., None]


def word_states(clip_text, vocab_size, word_dim, hidden_size, dropout,
                embedding_init, gru_matmul_dtype='float32',
                gru_implementation='auto', name=None):
  """The word-state module: the BiGRU (`WordStates`), or CLIP's text tower
  (`ClipWordStates`) when `clip_text` holds its sizes."""
  if clip_text is None:
    return WordStates(vocab_size, word_dim, hidden_size, dropout,
                      embedding_init, gru_matmul_dtype, gru_implementation,
                      name=name)
  return ClipWordStates(clip_text, hidden_size, dropout, name=name)


class RoleGraphEncoder(nn.Module):
  """HGR text side: sentence, verb and noun nodes reasoned over by an attention GCN.

  The sentence node is attention-pooled word states; a verb or noun node is the
  max-pool of the word states of its span times a learned embedding of its
  semantic role. Node order is [sentence, verbs..., nouns...], matching the
  adjacency written by `data_pipelines.role_graph.encode_graph`.
  """
  vocab_size: int
  word_dim: int
  hidden_size: int
  num_roles: int
  gcn_layers: int
  text_dropout: float
  gcn_dropout: float
  # None: the official uniform word embedding
  # (initializers.torch_word_embedding).
  embedding_init: Optional[Callable[..., Any]] = None
  # HANet also matches and classifies below the graph: word states and the
  # phrase vectors before their role embedding.
  word_level: bool = False
  # Sizes of a pretrained CLIP text tower that replaces the BiGRU.
  clip_text: Optional[clip.TowerSizes] = None
  # Operand type of the BiGRU's products ('float32' or 'bfloat16'), see
  # bigru.BiGRU.
  gru_matmul_dtype: str = 'float32'
  # 'plain', 'packed' (XLA:CPU) or 'auto' (by backend), see bigru.BiGRU.
  gru_implementation: str = 'auto'

  @nn.compact
  def __call__(self, text, train):
    """Encodes a batch of captions.

    Args:
      text: dict with token_ids (batch, words), length (batch,), verb_masks
        (batch, verbs, words), noun_masks (batch, nouns, words), node_roles
        (batch, verbs + nouns), adjacency (batch, nodes, nodes).
      train: enables dropout.

    Returns:
      dict with sentence (batch, hidden), verbs (batch, verbs, hidden),
      nouns (batch, nouns, hidden), verb_mask (batch, verbs) and
      noun_mask (batch, nouns); with `word_level`, also words (batch, words,
      hidden), word_mask (batch, words), verb_phrases (batch, verbs, hidden)
      and noun_phrases (batch, nouns, hidden).
    """
    token_ids, lengths = text['token_ids'], text['length']
    states = word_states(self.clip_text, self.vocab_size, self.word_dim,
                         self.hidden_size, self.text_dropout,
                         self.embedding_init, self.gru_matmul_dtype,
                         self.gru_implementation, name='words')(
                             token_ids, lengths, train)
    words = word_mask(token_ids, lengths)
    sentence = layers.AttentionPool(name='sentence_pool')(states, words)

    num_verbs = text['verb_masks'].shape[1]
    roles = nn.Embed(self.num_roles, self.hidden_size,
                     embedding_init=initializers.torch_embedding(),
                     name='role_embedding')(text['node_roles'])
    verb_phrases = layers.masked_max_pool(states, text['verb_masks'])
    noun_phrases = layers.masked_max_pool(states, text['noun_masks'])
    verbs = verb_phrases * roles[:, :num_verbs]
    nouns = noun_phrases * roles[:, num_verbs:]

    nodes = jnp.concatenate([sentence[:, None], verbs, nouns], axis=1)
    for i in range(self.gcn_layers):
      nodes = gcn.AttentionGCNLayer(self.hidden_size // 2, self.gcn_dropout,
                                    name=f'gcn_{i}')(nodes, text['adjacency'],
                                                     train)
    encoded = {
        'sentence': nodes[:, 0],
        'verbs': nodes[:, 1:1 + num_verbs],
        'nouns': nodes[:, 1 + num_verbs:],
        'verb_mask': jnp.any(text['verb_masks'], axis=-1),
        'noun_mask': jnp.any(text['noun_masks'], axis=-1),
    }
    if self.word_level:
      encoded.update(words=states, word_mask=words, verb_phrases=verb_phrases,
                     noun_phrases=noun_phrases)
    return encoded


class MeanPoolTextEncoder(nn.Module):
  """VSE++ text side: the mean of the BiGRU states over valid words."""
  vocab_size: int
  word_dim: int
  hidden_size: int
  text_dropout: float
  # None: the official uniform word embedding
  # (initializers.torch_word_embedding).
  embedding_init: Optional[Callable[..., Any]] = None
  # Sizes of a pretrained CLIP text tower that replaces the BiGRU.
  clip_text: Optional[clip.TowerSizes] = None
  # Operand type of the BiGRU's products ('float32' or 'bfloat16'), see
  # bigru.BiGRU.
  gru_matmul_dtype: str = 'float32'
  # 'plain', 'packed' (XLA:CPU) or 'auto' (by backend), see bigru.BiGRU.
  gru_implementation: str = 'auto'

  @nn.compact
  def __call__(self, text, train):
    """text: dict with token_ids (batch, words), length (batch,) -> {'sentence'}."""
    token_ids, lengths = text['token_ids'], text['length']
    states = word_states(self.clip_text, self.vocab_size, self.word_dim,
                         self.hidden_size, self.text_dropout,
                         self.embedding_init, self.gru_matmul_dtype,
                         self.gru_implementation, name='words')(
                             token_ids, lengths, train)
    return {'sentence': layers.masked_mean(states, word_mask(token_ids, lengths))}
