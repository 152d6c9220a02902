"""Fingerprints of HGR, VSE++, HANet and HCMI after 3 training steps.

`tests/test_model_reference.py` checks that refactors leave training
bit-for-bit where it was (up to float32 reassociation), on the backend and
jaxlib version the fingerprints were recorded with (skipped elsewhere).
After a deliberate change of behaviour (e.g. new initialisers), or to check
another backend or jaxlib, re-record from the repository root with

  python -m tests.model_reference --record

and commit tests/data/model_reference.json with the change.
"""

import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))  # For conftest's tiny_config.

from conftest import tiny_config  # noqa: E402
from data_pipelines import input_pipeline  # noqa: E402

REFERENCE_FILE = os.path.join(os.path.dirname(__file__), 'data',
                              'model_reference.json')
MODELS = ('hgr', 'vsepp', 'hanet', 'hcmi')
# The entry of REFERENCE_FILE saying where it was recorded (`platform_key`).
RECORDED_WITH = 'recorded_with'
NUM_STEPS = 3
NUM_SAMPLES = 4  # Values sampled from each leaf at fixed positions.


def fingerprint(tree):
  """{'path': {'sum': float, 'samples': [float]}} of every leaf, in float64."""
  import flax  # pylint: disable=g-import-not-at-top
  flat = flax.traverse_util.flatten_dict(tree, sep='/')
  result = {}
  for path, leaf in sorted(flat.items()):
    values = np.asarray(leaf, np.float64).ravel()
    positions = np.linspace(0, values.size - 1, NUM_SAMPLES).astype(int)
    result[path] = {'sum': float(values.sum()),
                    'samples': [float(values[i]) for i in positions]}
  return result


def trained_fingerprint(name, data_dir):
  """Fingerprint of params and batch_stats after NUM_STEPS steps on the
  first training batch of the tiny synthetic dataset."""
  import jax  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from hgr_jax import models  # pylint: disable=g-import-not-at-top
  from hgr_jax import sharding  # pylint: disable=g-import-not-at-top
  from hgr_jax import train  # pylint: disable=g-import-not-at-top

  config = tiny_config(name, data_dir=data_dir)
  builder = input_pipeline.get_builder(config)
  model = models.create_model(config, len(input_pipeline.vocabulary(builder)))
  batches = input_pipeline.train_dataset(
      builder, config, epoch=0, batch_size=config.batch_size,
      extra_features=model.extra_train_features())
  batch = next(iter(tfds.as_numpy(batches)))
  mesh = sharding.data_mesh()
  state = train.create_train_state(model, config, batches.element_spec, mesh)
  step = train.compile_train_step(model, mesh, state)
  batch = sharding.global_batch(batch, mesh)
  for _ in range(NUM_STEPS):
    state, metrics = step(state, batch)
  return {'params': fingerprint(jax.device_get(state.params)),
          'batch_stats': fingerprint(jax.device_get(state.batch_stats)),
          'metrics': {k: float(v) for k, v in
                      sorted(jax.device_get(metrics).items())}}


def prepare_tiny_data(data_dir):
  """Writes the tiny synthetic dataset of the tests into `data_dir`."""
  input_pipeline.prepare(input_pipeline.get_builder(
      tiny_config(data_dir=data_dir)))


def platform_key():
  """What the fingerprints depend on beyond the code: the backend and
  jaxlib's (major, minor) version. Other backends and compilers round
  differently, beyond the tests' rtol of 1e-5."""
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  return {'backend': jax.default_backend(),
          'jaxlib': '.'.join(jaxlib.__version__.split('.')[:2])}


def record():
  """Recomputes every model's fingerprint and writes REFERENCE_FILE."""
  with tempfile.TemporaryDirectory() as data_dir:
    prepare_tiny_data(data_dir)
    reference = {name: trained_fingerprint(name, data_dir) for name in MODELS}
  reference[RECORDED_WITH] = platform_key()
  os.makedirs(os.path.dirname(REFERENCE_FILE), exist_ok=True)
  with open(REFERENCE_FILE, 'w') as f:
    json.dump(reference, f, indent=1, sort_keys=True)
    f.write('\n')
  print(f'Wrote {REFERENCE_FILE}.')


if __name__ == '__main__':
  if sys.argv[1:] != ['--record']:
    sys.exit('Usage: python -m tests.model_reference --record')
  record()
