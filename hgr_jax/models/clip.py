"""CLIP's text and vision transformers (Radford et al., 2021) in Flax.

Module and parameter names follow the Hugging Face layout of a CLIP
checkpoint (`transformers.CLIPModel`), so that `hgr_jax.clip_checkpoint` maps
each parameter to its safetensors key by its path alone. Sizes come from the
checkpoint's config.json (`TowerSizes`).
"""

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

# config.json's hidden_act -> function. quick_gelu is OpenAI CLIP's.
ACTIVATIONS = {
    'quick_gelu': lambda x: x * jax.nn.sigmoid(1.702 * x),
    'gelu': lambda x: jax.nn.gelu(x, approximate=False),
    'gelu_new': lambda x: jax.nn.gelu(x, approximate=True),
    'gelu_pytorch_tanh': lambda x: jax.nn.gelu(x, approximate=True),
}


@dataclasses.dataclass(frozen=True)
class TowerSizes:
  """The sizes of one tower, as config.json's text_config/vision_config.

  `positions` is the text tower's max_position_embeddings; the vision tower
  derives its positions from image_size and patch_size.
  """
  width: int
  mlp_dim: int
  layers: int
  heads: int
  projection_dim: int
  activation: str
  layer_norm_eps: float
  vocab_size: int = 0  # Text only.
  positions: int = 0  # Text only.
  image_size: int = 0  # Vision only.
  patch_size: int = 0  # Vision only.


class Attention(nn.Module):
  """Multi-head self-attention with q/k/v/out projections (HF names)."""
  width: int
  heads: int

  @nn.compact
  def __call__(self, x, mask=None):
    """x: (batch, tokens, width), mask: None or (tokens, tokens) bool,
    True where a query may attend a key -> (batch, tokens, width)."""
    head_dim = self.width // self.heads
    split = lambda y: y.reshape(*y.shape[:2], self.heads, head_dim)
    query = split(nn.Dense(self.width, name='q_proj')(x))
    key = split(nn.Dense(self.width, name='k_proj')(x))
    value = split(nn.Dense(self.width, name='v_proj')(x))
    logits = jnp.einsum('bqhd,bkhd->bhqk', query, key) / math.sqrt(head_dim)
    if mask is not None:
      logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    weights = jax.nn.softmax(logits, axis=-1)
    attended = jnp.einsum('bhqk,bkhd->bqhd', weights, value)
    return nn.Dense(self.width, name='out_proj')(
        attended.reshape(*x.shape[:2], self.width))


class MLP(nn.Module):
  """fc1 -> activation -> fc2."""
  sizes: TowerSizes

  @nn.compact
  def __call__(self, x):
    x = nn.Dense(self.sizes.mlp_dim, name='fc1')(x)
    x = ACTIVATIONS[self.sizes.activation](x)
    return nn.Dense(self.sizes.width, name='fc2')(x)


class EncoderLayer(nn.Module):
  """Pre-LayerNorm transformer layer: attention, then a 2-layer MLP."""
  sizes: TowerSizes

  @nn.compact
  def __call__(self, x, mask=None):
    sizes = self.sizes
    norm = lambda name: nn.LayerNorm(sizes.layer_norm_eps, name=name)
    x = x + Attention(sizes.width, sizes.heads, name='self_attn')(
        norm('layer_norm1')(x), mask)
    return x + MLP(sizes, name='mlp')(norm('layer_norm2')(x))


class Encoder(nn.Module):
  """`sizes.layers` encoder layers, named as the checkpoint's."""
  sizes: TowerSizes

  @nn.compact
  def __call__(self, x, mask=None):
    for i in range(self.sizes.layers):
      x = EncoderLayer(self.sizes, name=f'layers_{i}')(x, mask)
    return x


class TextEmbeddings(nn.Module):
  sizes: TowerSizes

  @nn.compact
  def __call__(self, token_ids):
    """token_ids: (batch, tokens) -> (batch, tokens, width)."""
    tokens = nn.Embed(self.sizes.vocab_size, self.sizes.width,
                      name='token_embedding')(token_ids)
    positions = nn.Embed(self.sizes.positions, self.sizes.width,
                         name='position_embedding')(
                             jnp.arange(token_ids.shape[1]))
    return tokens + positions


class TextTower(nn.Module):
  """CLIP's text transformer: causal self-attention, final LayerNorm.

  Returns the token states and the projected embedding of the token at
  `pooled_positions` (CLIP pools its end-of-text token). Under the causal
  mask a token never sees the padding after it, so padding needs no mask.
  """
  sizes: TowerSizes

  @nn.compact
  def __call__(self, token_ids, pooled_positions):
    """token_ids: (batch, tokens), pooled_positions: (batch,) int.

    Returns:
      states (batch, tokens, width) after the final LayerNorm, and the
      embedding (batch, projection_dim) of the pooled token.
    """
    if token_ids.shape[1] > self.sizes.positions:
      raise ValueError(
          f'{token_ids.shape[1]} tokens per caption, but the CLIP text tower '
          f'has {self.sizes.positions} positions: lower config.max_words.')
    x = TextEmbeddings(self.sizes, name='embeddings')(token_ids)
    causal = jnp.tril(jnp.ones((token_ids.shape[1],) * 2, bool))
    x = Encoder(self.sizes, name='encoder')(x, causal)
    states = nn.LayerNorm(self.sizes.layer_norm_eps,
                          name='final_layer_norm')(x)
    pooled = jnp.take_along_axis(
        states, pooled_positions[:, None, None], axis=1)[:, 0]
    embedding = nn.Dense(self.sizes.projection_dim, use_bias=False,
                         name='text_projection')(pooled)
    return states, embedding


class VisionEmbeddings(nn.Module):
  sizes: TowerSizes

  @nn.compact
  def __call__(self, pixels):
    """pixels: (batch, size, size, 3) -> (batch, 1 + patches, width)."""
    sizes = self.sizes
    patches = nn.Conv(sizes.width, (sizes.patch_size,) * 2,
                      strides=(sizes.patch_size,) * 2, padding='VALID',
                      use_bias=False, name='patch_embedding')(pixels)
    patches = patches.reshape(pixels.shape[0], -1, sizes.width)
    cls = self.param('class_embedding', nn.initializers.normal(0.02),
                     (sizes.width,))
    tokens = jnp.concatenate(
        [jnp.broadcast_to(cls, (pixels.shape[0], 1, sizes.width)), patches],
        axis=1)
    positions = nn.Embed(tokens.shape[1], sizes.width,
                         name='position_embedding')(
                             jnp.arange(tokens.shape[1]))
    return tokens + positions


class VisionTower(nn.Module):
  """CLIP's vision transformer: patches + class token, pre- and post-
  LayerNorm, the class token projected."""
  sizes: TowerSizes

  @nn.compact
  def __call__(self, pixels):
    """pixels: (batch, size, size, 3), normalised -> (batch, projection_dim)."""
    size = self.sizes.image_size
    if pixels.shape[1:] != (size, size, 3):
      raise ValueError(f'Images of shape {pixels.shape[1:]}; this CLIP '
                       f'vision tower takes ({size}, {size}, 3).')
    x = VisionEmbeddings(self.sizes, name='embeddings')(pixels)
    x = nn.LayerNorm(self.sizes.layer_norm_eps, name='pre_layrnorm')(x)
    x = Encoder(self.sizes, name='encoder')(x)
    pooled = nn.LayerNorm(self.sizes.layer_norm_eps,
                          name='post_layernorm')(x[:, 0])
    return nn.Dense(self.sizes.projection_dim, use_bias=False,
                    name='visual_projection')(pooled)
