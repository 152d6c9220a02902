"""Pooling helpers and the float32-accumulating product against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hgr_jax.models import layers


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
