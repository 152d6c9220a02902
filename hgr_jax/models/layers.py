"""Building blocks shared by the video and text encoders."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hgr_jax.models import initializers

# Large finite negative rather than -inf: a fully masked row then softmaxes to a
# uniform distribution instead of NaN, and callers zero it afterwards.
NEG_INF = -1e9


def safe_norm(x, axis=-1, keepdims=False, eps=1e-10):
  """L2 norm clamped below at `eps` (the official `norm.clamp(1e-10)`).

  Clamping the squared norm keeps the gradient finite at x = 0 (padding).
  """
  squared = jnp.sum(jnp.square(x), axis=axis, keepdims=keepdims)
  return jnp.sqrt(jnp.maximum(squared, eps * eps))


def l2_normalize(x, axis=-1):
  """x divided by its clamped L2 norm along `axis`."""
  return x / safe_norm(x, axis=axis, keepdims=True)


def masked_softmax(logits, mask, axis=-1):
  """Softmax over positions where `mask` is True; masked positions get weight 0."""
  weights = jax.nn.softmax(jnp.where(mask, logits, NEG_INF), axis=axis)
  return jnp.where(mask, weights, 0.0)


def masked_mean(x, mask):
  """Mean over axis -2 of `x` (batch, length, dim) at valid `mask` (batch, length)."""
  mask = mask.astype(x.dtype)[..., None]
  return jnp.sum(x * mask, axis=-2) / jnp.maximum(jnp.sum(mask, axis=-2), 1.0)


def masked_max_pool(states, phrase_masks):
  """Max-pools word states over each phrase's words.

  Args:
    states: (batch, words, dim).
    phrase_masks: (batch, phrases, words) bool.

  Returns:
    (batch, phrases, dim); all zeros for an empty (padded) phrase so that it
    carries no information into the graph.
  """
  masked = jnp.where(phrase_masks[..., None], states[:, None], NEG_INF)
  pooled = jnp.max(masked, axis=2)
  return jnp.where(jnp.any(phrase_masks, axis=-1, keepdims=True), pooled, 0.0)


class AttentionPool(nn.Module):
  """Attention pooling over valid positions: softmax(Dense(x) -> 1) weighted sum.

  Used for the HGR sentence node (over words) and event vector (over frames).
  """

  @nn.compact
  def __call__(self, x, mask):
    """x: (batch, length, dim), mask: (batch, length) -> (batch, dim)."""
    logits = initializers.torch_dense(1, x.shape[-1], name='score')(x)[..., 0]
    weights = masked_softmax(logits, mask)
    return jnp.einsum('bl,bld->bd', weights, x)


def reverse_valid(x, lengths):
  """Reverses each sequence's valid prefix in place, leaving padding where it is.

  Args:
    x: (batch, length, ...).
    lengths: (batch,) int.
  """
  positions = jnp.arange(x.shape[1])[None, :]
  source = jnp.where(positions < lengths[:, None],
                     lengths[:, None] - 1 - positions, positions)
  return jnp.take_along_axis(
      x, source.reshape(source.shape + (1,) * (x.ndim - 2)), axis=1)


class BiGRU(nn.Module):
  """Bidirectional GRU whose forward and backward states are averaged (as HGR).

  Both directions run in one `lax.scan` and the input projections of all time
  steps are one matrix product outside the scan: on CPU this is several times
  faster than two `nn.RNN(nn.GRUCell)` passes. The cell equations are those of
  `nn.GRUCell` / PyTorch's GRU (tests check the match):
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
  """
  hidden_size: int

  @nn.compact
  def __call__(self, x, lengths):
    """x: (batch, length, dim), lengths: (batch,) -> (batch, length, hidden).

    Outputs at padded positions are zero; padding never reaches valid outputs.
    """
    batch, length, dim = x.shape
    hidden = self.hidden_size
    orthogonal = initializers.torch_orthogonal_per_direction
    input_kernel = self.param('input_kernel', orthogonal, (2, dim, 3 * hidden))
    input_bias = self.param('input_bias', nn.initializers.zeros, (2, 3 * hidden))
    hidden_kernel = self.param('hidden_kernel', orthogonal,
                               (2, hidden, 3 * hidden))
    hidden_bias = self.param('hidden_bias', nn.initializers.zeros,
                             (2, 3 * hidden))

    # The backward direction reads each sequence's valid prefix reversed.
    inputs = jnp.stack([x, reverse_valid(x, lengths)])  # (2, batch, length, dim)
    projected = jnp.einsum('zbld,zdk->lzbk', inputs, input_kernel)
    projected = projected + input_bias[None, :, None]

    def step(h, x_t):
      h_t = jnp.einsum('zbh,zhk->zbk', h, hidden_kernel) + hidden_bias[:, None]
      x_r, x_z, x_n = jnp.split(x_t, 3, axis=-1)
      h_r, h_z, h_n = jnp.split(h_t, 3, axis=-1)
      r = jax.nn.sigmoid(x_r + h_r)
      z = jax.nn.sigmoid(x_z + h_z)
      n = jnp.tanh(x_n + r * h_n)
      h = (1.0 - z) * n + z * h
      return h, h

    h0 = jnp.zeros((2, batch, hidden), x.dtype)
    _, states = jax.lax.scan(step, h0, projected)  # (length, 2, batch, hidden)
    forward = jnp.transpose(states[:, 0], (1, 0, 2))
    backward = reverse_valid(jnp.transpose(states[:, 1], (1, 0, 2)), lengths)
    valid = (jnp.arange(length)[None, :] < lengths[:, None])[..., None]
    return jnp.where(valid, (forward + backward) / 2, 0.0)
