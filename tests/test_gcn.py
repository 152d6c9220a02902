"""Attention GCN: NumPy reference and edge masking."""

import jax
import numpy as np

from hgr_jax.models import gcn


def _layer_and_params(nodes, adjacency):
  layer = gcn.AttentionGCNLayer(attention_size=4, dropout=0.5)
  return layer, layer.init(jax.random.PRNGKey(0), nodes, adjacency, False)


def _numpy_gcn(params, nodes, adjacency):
  p = params['params']
  query = nodes @ p['query']['kernel'] + p['query']['bias']
  key = nodes @ p['key']['kernel'] + p['key']['bias']
  logits = query @ key.T / 2.0  # sqrt(attention_size = 4)
  out = np.zeros_like(nodes)
  for i in range(len(nodes)):
    sources = np.flatnonzero(adjacency[i] > 0)
    context = np.zeros(nodes.shape[1])
    if len(sources):
      w = np.exp(logits[i, sources] - logits[i, sources].max())
      context = (w / w.sum()) @ nodes[sources]
    x = nodes[i] + context @ p['context']['kernel']
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-5)  # nn.LayerNorm eps
    out[i] = x * p['norm']['scale'] + p['norm']['bias']
  return out


def _graph(seed):
  rng = np.random.default_rng(seed)
  nodes = rng.normal(size=(1, 6, 8)).astype(np.float32)
  adjacency = np.zeros((1, 6, 6), np.float32)
  adjacency[0, 1, 0] = 1.0          # root -> verb
  adjacency[0, 1, 3] = adjacency[0, 3, 1] = 1.0  # verb <-> noun
  adjacency[0, 2, 0] = 1.0
  adjacency[0, 1] /= adjacency[0, 1].sum()
  return nodes, adjacency


def test_matches_numpy_reference():
  nodes, adjacency = _graph(0)
  layer, params = _layer_and_params(nodes, adjacency)
  got = layer.apply(params, nodes, adjacency, False)[0]
  np.testing.assert_allclose(got, _numpy_gcn(params, nodes[0], adjacency[0]),
                             atol=1e-5)


def test_nodes_only_see_their_edges():
  nodes, adjacency = _graph(1)
  layer, params = _layer_and_params(nodes, adjacency)
  before = np.asarray(layer.apply(params, nodes, adjacency, False))
  changed = nodes.copy()
  changed[0, 4] += 10.0  # Node 4 has no edge to anyone.
  after = np.asarray(layer.apply(params, changed, adjacency, False))
  np.testing.assert_allclose(after[0, :4], before[0, :4], atol=1e-6)
  changed = nodes.copy()
  changed[0, 3] += 10.0  # Node 3 feeds node 1 only.
  after = np.asarray(layer.apply(params, changed, adjacency, False))
  assert np.abs(after[0, 1] - before[0, 1]).max() > 1e-3
  np.testing.assert_allclose(after[0, [0, 2, 4, 5]], before[0, [0, 2, 4, 5]],
                             atol=1e-6)
