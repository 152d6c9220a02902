"""Reproduces the XLA:CPU deadlock of HANet's init and its fix.

  python -m benchmarks.xla_cpu_hang [--timeout=600]
      [--config=configs/msrvtt.py:hanet] [--feature_dim=2048]

Runs the jitted `model.init` of the config's model (default: HANet at the
paper's width 1024 on 2048-d ResNet features) in two subprocesses, each
under --timeout seconds:
- batched: the BiGRU kernels' orthogonal init vmapped over the two
  directions, i.e. one batched LAPACK QR per kernel (the code before the fix);
- per_direction: `initializers.torch_orthogonal_per_direction`, one
  unbatched QR per direction (the fix).
jaxlib 0.10's batched QR blocks its XLA:CPU worker thread until the batch's
tasks, queued on the same thread pool, are done; with two such QRs running at
once on a 2-thread pool (2 cores) both threads wait and nothing runs them.
Prints, per variant, the seconds to initialise (compilation included) or
that it gave no result in time, and the CPU seconds it used: a deadlocked
child stops using the CPU after compiling, a slow one on a loaded machine
does not.
"""

import importlib
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hgr_jax import models
from hgr_jax import platform
from hgr_jax.models import initializers

_TIMEOUT = flags.DEFINE_integer('timeout', 600, 'Seconds per variant.')
_CONFIG = flags.DEFINE_string('config', 'configs/msrvtt.py:hanet',
                              'Config file and variant whose model is built.')
_FEATURE_DIM = flags.DEFINE_integer(
    'feature_dim', 0, 'Input feature size; 0: the config\'s feature_dim_hint.')
_CHILD = flags.DEFINE_enum('child', None, ['batched', 'per_direction'],
                           'Internal: run one variant in this process.')

VARIANTS = ('batched', 'per_direction')


def _batched_orthogonal(key, shape, dtype=jnp.float32):
  """The init before the fix: a vmap, so one batched QR for both directions."""
  init = nn.initializers.orthogonal()
  return jax.vmap(lambda k: init(k, shape[1:], dtype))(
      jax.random.split(key, shape[0]))


def zero_inputs(config, feature_dim, batch_size=2):
  """Zero video and caption fields at the config's sizes: what init needs."""
  nodes = 1 + config.num_verbs + config.num_nouns
  zeros = lambda *shape, dtype=np.float32: np.zeros((batch_size, *shape),
                                                    dtype)
  return {
      'frames': zeros(config.max_frames, feature_dim),
      'frame_mask': zeros(config.max_frames, dtype=bool),
      'token_ids': zeros(config.max_words, dtype=np.int32),
      'length': zeros(dtype=np.int32),
      'verb_masks': zeros(config.num_verbs, config.max_words, dtype=bool),
      'noun_masks': zeros(config.num_nouns, config.max_words, dtype=bool),
      'node_roles': zeros(config.num_verbs + config.num_nouns,
                          dtype=np.int32),
      'adjacency': zeros(nodes, nodes),
  }


def run_child(variant):
  """Initialises the model in this process with the `variant` initialiser."""
  if variant == 'batched':
    initializers.torch_orthogonal_per_direction = _batched_orthogonal
  path, _, config_variant = _CONFIG.value.partition(':')
  module = importlib.import_module(path[:-3].replace('/', '.'))
  config = module.get_config(*([config_variant] if config_variant else []))
  feature_dim = _FEATURE_DIM.value or config.feature_dim_hint
  model = models.create_model(config, 10_000)
  batch = zero_inputs(config, feature_dim)
  start = time.time()
  variables = jax.jit(lambda rng: model.init(rng, batch))(
      jax.random.PRNGKey(0))
  jax.block_until_ready(variables)
  print(f'{time.time() - start:.1f}')


def main(argv):
  del argv
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  if _CHILD.value:
    run_child(_CHILD.value)
    return
  for variant in VARIANTS:
    command = [sys.executable, '-m', 'benchmarks.xla_cpu_hang',
               f'--child={variant}', f'--config={_CONFIG.value}',
               f'--feature_dim={_FEATURE_DIM.value}']
    cpu_before = _children_cpu_seconds()
    try:
      done = subprocess.run(command, capture_output=True, text=True,
                            timeout=_TIMEOUT.value, check=True)
      result = f'initialised in {done.stdout.split()[-1]} s'
    except subprocess.TimeoutExpired:
      result = f'no result after {_TIMEOUT.value} s'
    except subprocess.CalledProcessError as error:
      result = f'failed: {error.stderr.strip().splitlines()[-1]}'
    # On a shared machine a slow run and a deadlock both time out; only the
    # deadlocked one stops using the CPU once compiled.
    cpu = _children_cpu_seconds() - cpu_before
    print(f'{_CONFIG.value} {variant:>13}: {result}, {cpu:.1f} CPU s',
          flush=True)


def _children_cpu_seconds():
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


if __name__ == '__main__':
  app.run(main)
