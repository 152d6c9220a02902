"""PyTorch-default initialisers: bounds and spreads against their formulas."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hgr_jax.models import gcn
from hgr_jax.models import initializers
from hgr_jax.models import text_encoders

KEY = jax.random.PRNGKey(0)


def _uniform_checks(values, bound):
  """U(-bound, bound): inside the bound, reaching near it, std bound/sqrt(3)."""
  values = np.asarray(values).ravel()
  assert np.max(np.abs(values)) <= bound
  assert np.max(np.abs(values)) > 0.99 * bound
  np.testing.assert_allclose(np.std(values), bound / math.sqrt(3), rtol=0.03)
  assert abs(np.mean(values)) < 0.03 * bound


def test_torch_dense_of_fan_in_300_matches_nn_linear():
  dense = initializers.torch_dense(512, 300)
  params = dense.init(KEY, jnp.zeros((1, 300)))['params']
  # nn.Linear(300, 512): weight and bias U(+-1/sqrt(300)), std 1/sqrt(900).
  _uniform_checks(params['kernel'], 1 / math.sqrt(300))
  np.testing.assert_allclose(np.std(params['kernel']),
                             1 / math.sqrt(3 * 300), rtol=0.03)
  bias = np.asarray(params['bias'])
  assert np.max(np.abs(bias)) <= 1 / math.sqrt(300)
  assert np.std(bias) > 0.8 / math.sqrt(3 * 300)  # Not Flax's zero bias.


def test_torch_dense_without_bias():
  dense = initializers.torch_dense(8, 64, use_bias=False)
  params = dense.init(KEY, jnp.zeros((1, 64)))['params']
  assert set(params) == {'kernel'}


@pytest.mark.parametrize('fan_in', [3, 1024])
def test_torch_linear_bias_bound(fan_in):
  bias = initializers.torch_linear_bias(fan_in)(KEY, (20_000,))
  _uniform_checks(bias, 1 / math.sqrt(fan_in))


def test_torch_conv1d_bound_counts_kernel_width():
  # nn.Conv1d(256, 64, 5): weight and bias U(+-1/sqrt(256 * 5)).
  conv = initializers.torch_conv1d(64, 5, 256)
  params = conv.init(KEY, jnp.zeros((1, 10, 256)))['params']
  assert params['kernel'].shape == (5, 256, 64)
  _uniform_checks(params['kernel'], 1 / math.sqrt(256 * 5))
  assert np.max(np.abs(params['bias'])) <= 1 / math.sqrt(256 * 5)
  assert np.std(params['bias']) > 0.5 / math.sqrt(3 * 256 * 5)


def test_torch_embedding_is_standard_normal():
  table = np.asarray(initializers.torch_embedding()(KEY, (16, 4096)))
  np.testing.assert_allclose(np.std(table), 1.0, rtol=0.02)
  assert abs(np.mean(table)) < 0.02


def test_torch_word_embedding_bound():
  table = initializers.torch_word_embedding(300)(KEY, (200, 300))
  _uniform_checks(table, 1 / math.sqrt(300))


def test_orthogonal_per_direction_each_matrix_orthonormal_rows():
  stack = np.asarray(initializers.torch_orthogonal_per_direction(
      KEY, (2, 32, 96)), np.float64)
  for matrix in stack:
    # (in, 3 x hidden) with in < 3 x hidden: orthonormal rows, i.e. the
    # PyTorch (3 x hidden, in) weight has orthonormal columns.
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(32), atol=1e-5)
  assert not np.allclose(stack[0], stack[1])


def test_role_embedding_and_word_embedding_use_official_scales():
  encoder = text_encoders.RoleGraphEncoder(
      vocab_size=500, word_dim=300, hidden_size=256, num_roles=16,
      gcn_layers=1, text_dropout=0.0, gcn_dropout=0.0)
  text = {
      'token_ids': jnp.zeros((2, 6), jnp.int32),
      'length': jnp.array([6, 3]),
      'verb_masks': jnp.zeros((2, 2, 6), bool),
      'noun_masks': jnp.zeros((2, 3, 6), bool),
      'node_roles': jnp.zeros((2, 5), jnp.int32),
      'adjacency': jnp.zeros((2, 6, 6)),
  }
  params = encoder.init(KEY, text, train=False)['params']
  roles = np.asarray(params['role_embedding']['embedding'])
  # N(0, 1) as nn.Embedding, not Flax's std 1/sqrt(256).
  np.testing.assert_allclose(np.std(roles), 1.0, rtol=0.05)
  _uniform_checks(params['words']['embedding']['embedding'],
                  1 / math.sqrt(300))


def test_gcn_layer_norm_uses_torch_epsilon():
  layer = gcn.AttentionGCNLayer(attention_size=4, dropout=0.0)
  nodes = jax.random.normal(KEY, (1, 3, 8)) * 1e-3
  adjacency = jnp.zeros((1, 3, 3))
  params = layer.init(KEY, nodes, adjacency, train=False)
  out = np.asarray(layer.apply(params, nodes, adjacency, train=False),
                   np.float64)
  # No edges: LayerNorm of the nodes alone, with PyTorch's eps 1e-5 (at this
  # tiny scale eps 1e-6 would give a visibly different result).
  x = np.asarray(nodes, np.float64)
  centred = x - x.mean(-1, keepdims=True)
  expected = centred / np.sqrt(np.var(x, -1, keepdims=True) + 1e-5)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)
