"""The bidirectional GRU of the text encoders, with one implementation per
kind of backend.

- 'plain': one `lax.scan` over the padded length, rows first, both
  directions in one loop, autodiff for the gradient. What XLA compiles well
  on GPU and TPU: no custom layout, nothing hidden from the compiler.
- 'packed': `packed_gru.bigru`, tuned for XLA:CPU (two captions per row,
  rows-last loops that stop at the longest row, a hand-written gradient).

Both compute the same function with the same parameters (tests check both
against `nn.RNN(nn.GRUCell)`), so checkpoints move between them.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hgr_jax import platform
from hgr_jax import sharding
from hgr_jax.models import initializers
from hgr_jax.models import layers
from hgr_jax.models import packed_gru

IMPLEMENTATIONS = ('auto', 'plain', 'packed')


def implementation_for(backend):
  """The implementation 'auto' picks on a JAX backend ('cpu', 'gpu', ...)."""
  return 'packed' if backend == 'cpu' else 'plain'


def batch_groups():
  """How many devices the batch is split over: the size of the 'data' axis
  of the mesh being traced under (`sharding.on_mesh`), 1 without one."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return 1
  return dict(mesh.shape).get(sharding.DATA_AXIS, 1)


def plain_bigru(x, lengths, params, matmul_dtype):
  """Both directions of the BiGRU, averaged, by one scan over all steps.

  Args:
    x: (batch, length, dim).
    lengths: (batch,) int.
    params: (input_kernel (2, dim, 3 * hidden), input_bias (2, 3 * hidden),
      hidden_kernel (2, hidden, 3 * hidden), hidden_bias (2, 3 * hidden)),
      gates ordered r, z, n.
    matmul_dtype: operand type of the products (float32 accumulation).

  Returns:
    (batch, length, hidden), zero at padding.
  """
  input_kernel, input_bias, hidden_kernel, hidden_bias = params
  batch, length, _ = x.shape
  hidden = hidden_kernel.shape[1]
  # The backward direction reads each valid prefix reversed, so both
  # directions run forwards and padding only follows the valid steps.
  inputs = jnp.stack([x, layers.reverse_valid(x, lengths)])
  projected = jnp.einsum('zbld,zdk->zblk', inputs.astype(matmul_dtype),
                         input_kernel.astype(matmul_dtype),
                         preferred_element_type=jnp.float32)
  # (length, 2, batch, 3 * hidden): the scan's steps first.
  projected = jnp.moveaxis(projected + input_bias[:, None, None], 2, 0)
  kernel = hidden_kernel.astype(matmul_dtype)

  def step(h, x_t):
    """h: (2, batch, hidden), x_t: (2, batch, 3 * hidden)."""
    h_t = jnp.einsum('zbh,zhk->zbk', h.astype(matmul_dtype), kernel,
                     preferred_element_type=jnp.float32)
    h_t = h_t + hidden_bias[:, None]
    x_r, x_z, x_n = jnp.split(x_t, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(h_t, 3, axis=-1)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    h = (1.0 - z) * n + z * h
    return h, h

  _, states = jax.lax.scan(step, jnp.zeros((2, batch, hidden), jnp.float32),
                           projected)
  states = jnp.moveaxis(states, 0, 2)  # (2, batch, length, hidden)
  forward, backward = states[0], layers.reverse_valid(states[1], lengths)
  valid = (jnp.arange(length)[None, :] < lengths[:, None])[..., None]
  return jnp.where(valid, (forward + backward) / 2, 0.0)


class BiGRU(nn.Module):
  """Bidirectional GRU whose forward and backward states are averaged (as HGR).

  The cell equations are those of `nn.GRUCell` / PyTorch's GRU:
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
  with the weights of both directions stacked on a leading axis of 2.
  """
  hidden_size: int
  # Operand type of every product ('float32', 'bfloat16', or 'auto':
  # bfloat16 where the hardware multiplies it natively,
  # `platform.native_bfloat16`), accumulated in float32; states, gates and
  # parameters stay float32.
  matmul_dtype: str = 'float32'
  # 'plain', 'packed', or 'auto': 'packed' on XLA:CPU, 'plain' elsewhere.
  implementation: str = 'auto'
  # The packed implementation's pairing of two captions per row.
  pack_pairs: bool = True

  @nn.compact
  def __call__(self, x, lengths):
    """x: (batch, length, dim), lengths: (batch,) -> (batch, length, hidden).

    Outputs at padded positions are zero; padding never reaches valid outputs.
    """
    dim, hidden = x.shape[-1], self.hidden_size
    orthogonal = initializers.torch_orthogonal_per_direction
    params = (
        self.param('input_kernel', orthogonal, (2, dim, 3 * hidden)),
        self.param('input_bias', nn.initializers.zeros, (2, 3 * hidden)),
        self.param('hidden_kernel', orthogonal, (2, hidden, 3 * hidden)),
        self.param('hidden_bias', nn.initializers.zeros, (2, 3 * hidden)))
    if self.implementation not in IMPLEMENTATIONS:
      raise ValueError(f'BiGRU implementation={self.implementation!r}: '
                       f'expected one of {", ".join(IMPLEMENTATIONS)}.')
    implementation = self.implementation
    if implementation == 'auto':
      implementation = implementation_for(jax.default_backend())
    matmul_dtype = platform.matmul_dtype(self.matmul_dtype)
    lengths = jnp.asarray(lengths)
    if implementation == 'plain':
      return plain_bigru(x, lengths, params, matmul_dtype)
    return packed_gru.bigru(x, lengths, params, matmul_dtype, batch_groups(),
                            self.pack_pairs)
