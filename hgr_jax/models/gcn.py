"""Attention graph convolution over the sentence / verb / noun role graph (HGR)."""

import math

import flax.linen as nn
import jax.numpy as jnp

from hgr_jax.models import initializers
from hgr_jax.models import layers


class AttentionGCNLayer(nn.Module):
  """One attention-GCN layer as in HGR's official `AttnGCNLayer`.

  Each node attends (scaled dot product of query/key projections of width
  `attention_size`) to the nodes it has an edge from; the attended context goes
  through a linear map, dropout, a residual connection and LayerNorm.
  """
  attention_size: int
  dropout: float

  @nn.compact
  def __call__(self, nodes, adjacency, train):
    """nodes: (batch, nodes, dim), adjacency: (batch, nodes, nodes) -> nodes.

    adjacency[b, i, j] > 0 when node i receives from node j; a node with no
    incoming edge only goes through the residual path.
    """
    dim = nodes.shape[-1]
    query = initializers.torch_dense(self.attention_size, dim,
                                     name='query')(nodes)
    key = initializers.torch_dense(self.attention_size, dim, name='key')(nodes)
    logits = jnp.einsum('bia,bja->bij', query, key) / math.sqrt(
        self.attention_size)
    weights = layers.masked_softmax(logits, adjacency > 0)
    context = initializers.torch_dense(dim, dim, use_bias=False,
                                       name='context')(
        jnp.einsum('bij,bjd->bid', weights, nodes))
    context = nn.Dropout(self.dropout, deterministic=not train)(context)
    return nn.LayerNorm(epsilon=initializers.TORCH_NORM_EPSILON,
                        name='norm')(nodes + context)
