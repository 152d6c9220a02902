"""PyTorch's default initialisers, for layers whose official code keeps them.

The official HGR (cshizhe/hgr_v2t), VSE++ baseline and HANet (Roc-Ng/HANet)
leave `nn.Linear`, `nn.Conv1d`, `nn.Embedding` and `nn.LayerNorm` at
PyTorch's defaults and override only the word embedding and the GRU. Flax's
defaults differ (lecun normal kernels, zero biases, embeddings of std
1/sqrt(features)), and the scales change how fast the models learn, so the
modules name the PyTorch initialiser they mirror.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

# PyTorch's nn.LayerNorm and nn.BatchNorm1d epsilon (Flax's default is 1e-6).
TORCH_NORM_EPSILON = 1e-5


def torch_linear_kernel():
  """`nn.Linear` / `nn.Conv1d` weight: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

  PyTorch's kaiming_uniform_(a=sqrt(5)) has bound
  sqrt(6 / (1 + 5)) * sqrt(3 / fan_in) = 1/sqrt(fan_in), which is Flax's
  variance scaling with scale 1/3; fan_in counts the kernel's receptive field
  (in_channels x width for a convolution) as PyTorch does.
  """
  return nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')


def torch_linear_bias(fan_in):
  """`nn.Linear` / `nn.Conv1d` bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

  Args:
    fan_in: input features (times the kernel width for a convolution).
  """
  return uniform_symmetric(1 / math.sqrt(fan_in))


def uniform_symmetric(bound):
  """U(-bound, bound), as torch.nn.init.uniform_(w, -bound, bound)."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def torch_embedding():
  """`nn.Embedding` weight: N(0, 1) (HGR's role embedding)."""
  return nn.initializers.normal(stddev=1.0)


def torch_word_embedding(word_dim):
  """The official word embedding: U(-1/sqrt(word_dim), 1/sqrt(word_dim)).

  framework/modules/embeddings.py `Embedding.init_weight` of both official
  codes.
  """
  return uniform_symmetric(1 / math.sqrt(word_dim))


def torch_orthogonal_per_direction(key, shape, dtype=jnp.float32):
  """GRU weights of a (directions, in, out) stack, each matrix orthogonal.

  The official encoders call nn.init.orthogonal_ on every (3 x hidden, in)
  GRU weight; our (in, 3 x hidden) matrix is its transpose, and the
  transpose of a matrix with orthonormal columns has orthonormal rows, which
  Flax's orthogonal initialiser gives for in < 3 x hidden.

  One unbatched QR per direction, not a vmap: jaxlib 0.10's batched LAPACK
  QR blocks its XLA:CPU worker thread until the batch's tasks, queued on the
  same thread pool, are done. Two such QRs running at once on a 2-thread
  pool wait for each other forever (HANet's init at width 1024 with 2048-d
  features; benchmarks/xla_cpu_hang.py).
  """
  init = nn.initializers.orthogonal()
  return jnp.stack([init(k, shape[1:], dtype)
                    for k in jax.random.split(key, shape[0])])


def torch_dense(features, fan_in, use_bias=True, name=None):
  """An `nn.Dense` initialised as PyTorch's `nn.Linear(fan_in, features)`."""
  return nn.Dense(features, use_bias=use_bias,
                  kernel_init=torch_linear_kernel(),
                  bias_init=torch_linear_bias(fan_in), name=name)


def torch_conv1d(features, kernel_size, fan_in, name=None):
  """An `nn.Conv` (SAME padding) initialised as PyTorch's `nn.Conv1d`.

  Args:
    features: output channels.
    kernel_size: temporal width.
    fan_in: input channels (the bias bound uses fan_in x kernel_size).
    name: module name.
  """
  return nn.Conv(features, (kernel_size,), padding='SAME',
                 kernel_init=torch_linear_kernel(),
                 bias_init=torch_linear_bias(fan_in * kernel_size), name=name)
