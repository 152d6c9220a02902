"""Masked transformer blocks: token contextualisation and token aggregation.

HCMI (Jiang et al., 2022) groups tokens with "self-attention + feed-forward"
layers: frames into clips into one video vector, words into phrases into one
sentence vector. Our reading: a fixed number of learned queries attend over
the tokens, then a feed-forward layer; padded tokens are never attended to.
"""

import flax.linen as nn
import jax.numpy as jnp

from hgr_jax.models import layers


class FeedForward(nn.Module):
  """Dense(4 x width) -> GELU -> dropout -> Dense(width)."""
  dropout: float

  @nn.compact
  def __call__(self, x, train):
    """x: (..., width) -> (..., width)."""
    width = x.shape[-1]
    hidden = nn.gelu(nn.Dense(4 * width, name='expand')(x))
    hidden = nn.Dropout(self.dropout, deterministic=not train)(hidden)
    return nn.Dense(width, name='project')(hidden)


class TransformerLayer(nn.Module):
  """Post-norm self-attention + feed-forward over the valid tokens."""
  num_heads: int
  dropout: float

  @nn.compact
  def __call__(self, tokens, mask, train):
    """tokens: (batch, length, width), mask: (batch, length) bool.

    Returns:
      (batch, length, width). Valid outputs depend on valid tokens only;
      outputs at padded positions are meaningless (callers mask them).
    """
    drop = nn.Dropout(self.dropout, deterministic=not train)
    attended = nn.MultiHeadDotProductAttention(
        self.num_heads, name='attention')(
            tokens, tokens, mask=nn.make_attention_mask(mask, mask))
    tokens = nn.LayerNorm(name='attention_norm')(tokens + drop(attended))
    forward = FeedForward(self.dropout, name='feed_forward')(tokens, train)
    return nn.LayerNorm(name='feed_forward_norm')(tokens + drop(forward))


def segment_masks(mask, num_segments):
  """Which valid tokens fall in each of `num_segments` contiguous segments.

  Valid token i of n (in order) is in segment floor(i num_segments / n), so
  segments are as even as the count allows. A segment left empty (fewer
  tokens than segments) gets every valid token instead.

  Args:
    mask: (batch, length) bool, the valid tokens.
    num_segments: int.

  Returns:
    (batch, num_segments, length) bool.
  """
  count = jnp.sum(mask, axis=1, keepdims=True)
  position = jnp.cumsum(mask, axis=1) - 1
  segment = position * num_segments // jnp.maximum(count, 1)
  masks = (segment[:, None, :] == jnp.arange(num_segments)[None, :, None]
           ) & mask[:, None, :]
  return jnp.where(jnp.any(masks, axis=2, keepdims=True), masks,
                   mask[:, None, :])


class AggregationBlock(nn.Module):
  """`num_queries` learned queries attend over the valid tokens, then a
  feed-forward layer: (length) tokens become (num_queries) tokens.

  With `segments`, query k attends only to the k-th of `num_queries`
  contiguous segments of the valid tokens (`segment_masks`).
  """
  num_queries: int
  num_heads: int
  dropout: float
  segments: bool = False

  @nn.compact
  def __call__(self, tokens, mask, train):
    """tokens: (batch, length, width), mask: (batch, length) bool.

    Returns:
      (batch, num_queries, width), every output valid; padded tokens change
      nothing. A row without valid tokens gets a uniform attention (its
      output is then meaningless, as the row is).
    """
    batch, _, width = tokens.shape
    queries = self.param('queries', nn.initializers.normal(stddev=0.02),
                         (self.num_queries, width))
    queries = jnp.broadcast_to(queries, (batch, self.num_queries, width))
    if self.segments:
      key_mask = segment_masks(mask, self.num_queries)[:, None]
    else:
      key_mask = jnp.broadcast_to(mask[:, None, None, :],
                                  (batch, 1, self.num_queries, mask.shape[1]))
    drop = nn.Dropout(self.dropout, deterministic=not train)
    attended = nn.MultiHeadDotProductAttention(
        self.num_heads, name='attention')(queries, tokens, mask=key_mask)
    grouped = nn.LayerNorm(name='attention_norm')(queries + drop(attended))
    forward = FeedForward(self.dropout, name='feed_forward')(grouped, train)
    return nn.LayerNorm(name='feed_forward_norm')(grouped + drop(forward))


class AttentionCentroids(nn.Module):
  """`num_queries` learned queries each take an attention-weighted mean of
  the valid tokens themselves (no value projection, no feed-forward):
  centroids of the tokens they select, in the tokens' space.

  With `segments`, query k attends only to the k-th of `num_queries`
  contiguous segments of the valid tokens (`segment_masks`).
  """
  num_queries: int
  segments: bool = False

  @nn.compact
  def __call__(self, tokens, mask, train):
    """tokens: (batch, length, width), mask: (batch, length) bool.

    Returns:
      (batch, num_queries, width); padded tokens get weight 0.
    """
    del train
    width = tokens.shape[-1]
    queries = self.param('queries', nn.initializers.normal(stddev=0.02),
                         (self.num_queries, width))
    keys = nn.Dense(width, use_bias=False, name='key')(tokens)
    logits = jnp.einsum('qd,bld->bql', queries, keys) / jnp.sqrt(width)
    if self.segments:
      key_mask = segment_masks(mask, self.num_queries)
    else:
      key_mask = jnp.broadcast_to(mask[:, None, :], logits.shape)
    weights = layers.masked_softmax(logits, key_mask)
    return jnp.einsum('bql,bld->bqd', weights, tokens)


class TokenWeights(nn.Module):
  """DRL-style token weights (Wang et al., 2022): Dense -> 1, softmax over
  the valid tokens."""

  @nn.compact
  def __call__(self, tokens, mask):
    """tokens: (batch, length, width), mask: (batch, length) bool.

    Returns:
      (batch, length) weights summing to 1 over valid tokens, 0 on padding.
    """
    return layers.masked_softmax(nn.Dense(1, name='logit')(tokens)[..., 0],
                                 mask)
