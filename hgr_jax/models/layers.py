"""Building blocks shared by the video and text encoders."""

import functools

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


def dot(subscripts, a, b, matmul_dtype=None):
  """einsum of `a` and `b` cast to `matmul_dtype` (None: as they are),
  accumulated in float32. Its gradient's products take the same operand
  type (the incoming gradient is cast too)."""
  if matmul_dtype is None or a.dtype == b.dtype == jnp.dtype(matmul_dtype):
    return jnp.einsum(subscripts, a, b, preferred_element_type=jnp.float32)
  return _cast_einsum(subscripts, jnp.dtype(matmul_dtype), a.dtype,
                      b.dtype)(a, b)


@functools.lru_cache(maxsize=None)
def _cast_einsum(subscripts, matmul_dtype, a_dtype, b_dtype):
  """`dot` with its own gradient. Autodiff of the cast operands would
  multiply the float32 gradient by the operands cast back to float32: on
  XLA:CPU the input projection's gradient then ran at a quarter of the
  bfloat16 products' speed."""
  inputs, out = subscripts.split('->')
  a_axes, b_axes = inputs.split(',')
  if not set(a_axes) <= set(b_axes + out) or not set(b_axes) <= set(
      a_axes + out):
    raise ValueError(f'dot({subscripts!r}): an axis summed within one '
                     'operand has no gradient rule here.')

  def einsum(spec, x, y):
    return jnp.einsum(spec, x, y, preferred_element_type=jnp.float32)

  def forward(a, b):
    a, b = a.astype(matmul_dtype), b.astype(matmul_dtype)
    return einsum(subscripts, a, b), (a, b)

  def backward(saved, g):
    a, b = saved
    g = g.astype(matmul_dtype)
    return (einsum(f'{out},{b_axes}->{a_axes}', g, b).astype(a_dtype),
            einsum(f'{a_axes},{out}->{b_axes}', a, g).astype(b_dtype))

  cast_einsum = jax.custom_vjp(lambda a, b: forward(a, b)[0])
  cast_einsum.defvjp(forward, backward)
  return cast_einsum
