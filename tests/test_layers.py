"""BiGRU against flax's own GRU cells; pooling helpers against NumPy."""

import os
import re
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hgr_jax.models import layers


def _flax_reference(params, x, lengths, hidden):
  """Forward/backward nn.RNN(nn.GRUCell) with the BiGRU's weights, averaged."""
  def cell_params(direction):
    wi = jnp.split(params['input_kernel'][direction], 3, axis=-1)
    bi = jnp.split(params['input_bias'][direction], 3)
    wh = jnp.split(params['hidden_kernel'][direction], 3, axis=-1)
    bh = jnp.split(params['hidden_bias'][direction], 3)
    # nn.GRUCell has a hidden bias only on the candidate gate: fold the
    # others into the input biases, which sum with them.
    return {
        'ir': {'kernel': wi[0], 'bias': bi[0] + bh[0]},
        'iz': {'kernel': wi[1], 'bias': bi[1] + bh[1]},
        'in': {'kernel': wi[2], 'bias': bi[2]},
        'hr': {'kernel': wh[0]}, 'hz': {'kernel': wh[1]},
        'hn': {'kernel': wh[2], 'bias': bh[2]},
    }
  forward = nn.RNN(nn.GRUCell(hidden))
  backward = nn.RNN(nn.GRUCell(hidden), reverse=True, keep_order=True)
  out_f = forward.apply({'params': {'cell': cell_params(0)}}, x,
                        seq_lengths=lengths)
  out_b = backward.apply({'params': {'cell': cell_params(1)}}, x,
                         seq_lengths=lengths)
  return (out_f + out_b) / 2


def _random_bigru(seed, lengths=(6, 2, 4)):
  """A BiGRU(7) with random N(0, 0.25) weights, inputs (batch, 6, 5) and
  `lengths`: (rng, x, lengths, model, params)."""
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(len(lengths), 6, 5)), jnp.float32)
  lengths = jnp.array(lengths)
  model = layers.BiGRU(7)
  params = model.init(jax.random.PRNGKey(0), x, lengths)['params']
  params = jax.tree.map(
      lambda p: jnp.asarray(rng.normal(size=p.shape) * 0.5, jnp.float32),
      params)
  return rng, x, lengths, model, params


# Odd batch: one row per sequence. Even batches: pairs 6+0, 4+2, 3+3 fit in
# 6 steps (packed rows); 6+2 does not (one row per sequence). The last two
# stop before the padded length: packed rows of 4+1 and 3+2 words, and one
# row per sequence up to 5 words.
BATCHES = [(6, 2, 4), (3, 6, 0, 2, 3, 4), (6, 2, 5, 6), (4, 1, 2, 3),
           (5, 2, 3)]


@pytest.mark.parametrize('lengths', BATCHES)
def test_bigru_matches_flax_gru_cells_on_valid_steps(lengths):
  _, x, lengths, model, params = _random_bigru(0, lengths)
  ours = np.asarray(model.apply({'params': params}, x, lengths))
  reference = np.asarray(_flax_reference(params, x, lengths, 7))
  for b, length in enumerate(np.asarray(lengths)):
    np.testing.assert_allclose(ours[b, :length], reference[b, :length],
                               atol=1e-5)
    np.testing.assert_array_equal(ours[b, length:], 0.0)


@pytest.mark.parametrize('lengths', BATCHES)
def test_bigru_gradient_matches_autodiff_of_flax_gru_cells(lengths):
  rng, x, lengths, model, params = _random_bigru(2, lengths)
  # A weighting of valid outputs, so every output position has its own
  # cotangent.
  valid = np.arange(6)[None, :, None] < np.asarray(lengths)[:, None, None]
  weights = jnp.asarray(rng.normal(size=(len(lengths), 6, 7)) * valid,
                        jnp.float32)
  ours = jax.grad(lambda p, x: jnp.sum(
      weights * model.apply({'params': p}, x, lengths)), argnums=(0, 1))
  reference = jax.grad(lambda p, x: jnp.sum(
      weights * _flax_reference(p, x, lengths, 7)), argnums=(0, 1))
  (ours_params, ours_x), (ref_params, ref_x) = ours(params, x), reference(
      params, x)
  for name in params:
    assert float(jnp.abs(ref_params[name]).max()) > 0.1, name
    np.testing.assert_allclose(ours_params[name], ref_params[name],
                               atol=1e-5, rtol=1e-4, err_msg=name)
  np.testing.assert_allclose(ours_x, ref_x, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('lengths', BATCHES)
def test_bfloat16_products_stay_within_rounding_of_float32(lengths):
  rng, x, lengths, model, params = _random_bigru(3, lengths)
  bf16 = layers.BiGRU(7, matmul_dtype='bfloat16')
  weights = jnp.asarray(rng.normal(size=(len(lengths), 6, 7)), jnp.float32)

  def loss(model, p):
    return jnp.sum(weights * model.apply({'params': p}, x, lengths))
  out32 = np.asarray(model.apply({'params': params}, x, lengths))
  out16 = np.asarray(bf16.apply({'params': params}, x, lengths))
  difference = np.abs(out16 - out32).max()
  # bfloat16 keeps 8 bits of mantissa: products move by ~1e-2 relative
  # (outputs are O(1)), and they do move, so bfloat16 was really used.
  assert 1e-4 < difference < 5e-2, difference
  grads32 = jax.grad(loss, argnums=1)(model, params)
  grads16 = jax.grad(loss, argnums=1)(bf16, params)
  for name in params:
    assert grads16[name].dtype == jnp.float32, name
    scale = float(jnp.abs(grads32[name]).max())
    error = float(jnp.abs(grads16[name] - grads32[name]).max())
    assert error < 0.05 * scale, (name, error, scale)


@pytest.mark.parametrize('first_length', [3, 2])  # One row each; packed.
def test_bigru_ignores_padding(first_length):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 5, 4)).astype(np.float32)
  lengths = jnp.array([first_length, 3 if first_length == 2 else 5])
  model = layers.BiGRU(6)
  params = model.init(jax.random.PRNGKey(0), x, lengths)
  noisy = x.copy()
  noisy[0, first_length:] = rng.normal(size=(5 - first_length, 4)) * 100
  np.testing.assert_allclose(model.apply(params, x, lengths),
                             model.apply(params, noisy, lengths), atol=1e-6)


def test_pair_rows_pairs_longest_with_shortest():
  first, second, fits = layers.pair_rows(jnp.array([3, 6, 0, 2, 3, 4]), 6)
  lengths = np.array([3, 6, 0, 2, 3, 4])
  assert sorted(zip(lengths[first].tolist(), lengths[second].tolist())) == [
      (3, 3), (4, 2), (6, 0)]
  assert sorted(np.concatenate([first, second]).tolist()) == list(range(6))
  assert bool(fits)
  assert not bool(layers.pair_rows(jnp.array([6, 2, 5, 6]), 6)[2])


def test_reverse_valid_keeps_padding_in_place():
  x = jnp.arange(10).reshape(2, 5)
  out = layers.reverse_valid(x, jnp.array([3, 5]))
  np.testing.assert_array_equal(out, [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]])


def test_masked_max_pool_against_numpy():
  rng = np.random.default_rng(2)
  states = rng.normal(size=(2, 6, 3)).astype(np.float32)
  masks = rng.random((2, 4, 6)) < 0.4
  masks[0, 3] = False  # An empty phrase pools to zeros.
  out = np.asarray(layers.masked_max_pool(jnp.asarray(states),
                                          jnp.asarray(masks)))
  for b in range(2):
    for p in range(4):
      expected = (states[b][masks[b, p]].max(0) if masks[b, p].any()
                  else np.zeros(3))
      np.testing.assert_allclose(out[b, p], expected, rtol=1e-6)


def test_attention_pool_ignores_masked_positions():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(2, 5, 4)).astype(np.float32)
  mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
  pool = layers.AttentionPool()
  params = pool.init(jax.random.PRNGKey(0), x, mask)
  changed = x.copy()
  changed[0, 2:] = 1e3
  np.testing.assert_allclose(pool.apply(params, x, mask),
                             pool.apply(params, changed, mask), rtol=1e-6)
  logits = x[0, :2] @ np.asarray(params['params']['score']['kernel'])[:, 0]
  weights = np.exp(logits - logits.max())
  weights /= weights.sum()
  np.testing.assert_allclose(pool.apply(params, x, mask)[0],
                             weights @ x[0, :2], rtol=1e-5)



_SHARDED_SCRIPT = '''
import jax, jax.numpy as jnp, numpy as np
from hgr_jax import sharding
from hgr_jax.models import layers
assert jax.device_count() == 8
mesh = sharding.data_mesh()
x = jnp.ones((64, 30, 16))
lengths = jnp.asarray(np.random.default_rng(0).integers(5, 15, 64))
model = layers.BiGRU(32)
params = model.init(jax.random.PRNGKey(0), x, lengths)
x, lengths = jax.device_put((x, lengths), sharding.batch_sharded(mesh))
loss = lambda p, x: jnp.sum(model.apply(p, x, lengths) ** 2)
print(jax.jit(jax.grad(loss)).lower(params, x).compile().as_text())
'''


def test_packed_scan_stays_sharded_over_devices():
  """On 8 devices a batch of 64 captions packs into 32 rows, 4 per device:
  the loop's inputs (a group of rows per device, 2 directions, 3 x 32
  gates, 30 steps, rows) must have 4 rows (8 unpacked) in the compiled
  program, never all 32."""
  env = dict(os.environ,
             XLA_FLAGS='--xla_force_host_platform_device_count=8')
  hlo = subprocess.run([sys.executable, '-c', _SHARDED_SCRIPT], env=env,
                       check=True, capture_output=True, text=True).stdout
  rows = set(re.findall(r'f32\[1,2,96,30,(\d+)\]', hlo))
  assert rows == {'4', '8'}, rows


def test_dot_gradient_products_take_the_operand_type():
  rng = np.random.default_rng(5)
  a = rng.normal(size=(3, 4, 5)).astype(np.float32)
  b = rng.normal(size=(5, 6)).astype(np.float32)
  g = rng.normal(size=(3, 4, 6)).astype(np.float32)
  rounded = lambda x: np.asarray(jnp.asarray(x, jnp.bfloat16), np.float64)
  out, vjp = jax.vjp(
      lambda a, b: layers.dot('xyd,dk->xyk', a, b, jnp.bfloat16), a, b)
  da, db = vjp(jnp.asarray(g))
  assert out.dtype == da.dtype == db.dtype == jnp.float32
  np.testing.assert_allclose(out, rounded(a) @ rounded(b), rtol=1e-5,
                             atol=1e-5)
  # The gradient's products see the gradient rounded to bfloat16 as well.
  expected_da = rounded(g) @ rounded(b).T
  expected_db = np.einsum('xyd,xyk->dk', rounded(a), rounded(g))
  np.testing.assert_allclose(da, expected_da, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(db, expected_db, rtol=1e-5, atol=1e-5)
  assert np.abs(da - g @ rounded(b).T).max() > 1e-4


def test_dot_in_float32_keeps_autodiff():
  rng = np.random.default_rng(6)
  a, b = rng.normal(size=(4, 5)), rng.normal(size=(5, 3))
  a, b = a.astype(np.float32), b.astype(np.float32)
  loss = lambda f: lambda a, b: jnp.sum(jnp.sin(f(a, b)))
  ours = jax.grad(loss(lambda a, b: layers.dot('ij,jk->ik', a, b,
                                               jnp.float32)), (0, 1))(a, b)
  numpy_grads = (np.cos(a @ b) @ b.T, a.T @ np.cos(a @ b))
  for got, want in zip(ours, numpy_grads):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_dot_rejects_an_axis_summed_within_one_operand():
  x = jnp.ones((2, 3), jnp.float32)
  with pytest.raises(ValueError, match='summed within one operand'):
    layers.dot('ij,jk->i', x, x.T, jnp.bfloat16)
