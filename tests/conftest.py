"""Shared fixtures: a tiny synthetic dataset and config that train in seconds."""

import atexit
import os
import shutil
import tempfile

# The suite compiles the same tiny models over and over, in this process and
# in the CLI, notebook and multi-process tests it starts: one persistent XLA
# cache per pytest run lets each program compile once. Set in the environment
# before JAX is imported, so that the subprocesses inherit it; a cache the
# caller chose (or a parent pytest made) is kept. Thresholds of 0: CPU
# programs compile in under the default second, and are small.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _cache_dir = tempfile.mkdtemp(prefix='hgr_jax_test_xla_cache_')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _cache_dir
  atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

from hgr_jax import platform  # noqa: E402

# The suite runs as the command line does (`hgr_jax.main`), with its XLA:CPU
# flags, set before JAX starts its backend; the subprocesses inherit them.
platform.configure_xla_cpu()
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from configs import synthetic as synthetic_config  # noqa: E402
from data_pipelines import input_pipeline  # noqa: E402


def tiny_config(model='hgr', data_dir=None):
  """The synthetic config shrunk so that a model trains on it in seconds."""
  config = synthetic_config.get_config(model)
  config.data_dir = data_dir
  config.synthetic.update(dict(feature_dim=32, num_train_videos=48,
                               num_validation_videos=16, num_test_videos=16))
  config.update(dict(batch_size=8, num_epochs=2, log_every_steps=5,
                     eval_batch_size=16, learning_rate=1e-3))
  config.model.update(dict(word_dim=16, hidden_size=32))
  # One bucket below max_words: the loop still cuts batches, and the train
  # step compiles once (synthetic captions have at most 22 words).
  config.word_buckets = (24,)
  if model == 'hanet':
    config.model.update(dict(num_verb_concepts=16, num_noun_concepts=32,
                       num_action_clips=4, num_entity_clips=8))
  if model == 'hcmi':
    config.model.num_heads = 2
  return config


def train_element_spec(config, model):
  """The element_spec of `model`'s training batches of config's (prepared)
  dataset, extra fields included: what `train.create_train_state` takes."""
  return input_pipeline.train_dataset(
      input_pipeline.get_builder(config), config, 0, config.batch_size,
      extra_features=model.extra_train_features()).element_spec


def zero_inputs(config, feature_dim, batch_size):
  """Zero video and caption fields of a batch, without a dataset."""
  nodes = 1 + config.num_verbs + config.num_nouns
  return {
      'frames': np.zeros((batch_size, config.max_frames, feature_dim),
                         np.float32),
      'frame_mask': np.ones((batch_size, config.max_frames), bool),
      'token_ids': np.zeros((batch_size, config.max_words), np.int32),
      'length': np.ones((batch_size,), np.int32),
      'verb_masks': np.zeros((batch_size, config.num_verbs, config.max_words),
                             bool),
      'noun_masks': np.zeros((batch_size, config.num_nouns, config.max_words),
                             bool),
      'node_roles': np.zeros((batch_size, config.num_verbs + config.num_nouns),
                             np.int32),
      'adjacency': np.zeros((batch_size, nodes, nodes), np.float32),
  }


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
  """A data dir holding the prepared tiny synthetic dataset."""
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  input_pipeline.prepare(input_pipeline.get_builder(tiny_config(data_dir=data_dir)))
  return data_dir


def search_config(data_dir):
  """A small HGR config that ranks most tiny test captions first after two
  epochs (R@1 83% measured); the export and search tests query it."""
  config = tiny_config('hgr,easy', data_dir=data_dir)  # Measured on easy.
  config.synthetic.update(dict(feature_dim=64, num_train_videos=400))
  config.update(dict(batch_size=32, learning_rate=3e-3,
                     binary_selection=False))
  config.model.update(dict(word_dim=32, hidden_size=64, text_dropout=0.0,
                           video_dropout=0.0, gcn_dropout=0.0))
  return config


@pytest.fixture(scope='session')
def trained_workdir(tmp_path_factory):
  """(config, workdir, test metrics) of a small HGR trained once per session."""
  from hgr_jax import train  # pylint: disable=g-import-not-at-top
  config = search_config(str(tmp_path_factory.mktemp('search_tfds')))
  workdir = str(tmp_path_factory.mktemp('search_workdir'))
  return config, workdir, train.train_and_evaluate(config, workdir)


# Files whose tests share the session's `trained_workdir`: one pytest-xdist
# worker runs them all, so that the model trains once.
_TRAINED_WORKDIR_FILES = ('test_export.py', 'test_search.py',
                          'test_serve.py')


def pytest_collection_modifyitems(items):
  """Under `pytest -n N --dist loadgroup`, sends each test file to one
  worker: module fixtures (datasets, trained models) are built once."""
  for item in items:
    name = item.path.name
    group = 'trained_workdir' if name in _TRAINED_WORKDIR_FILES else name
    item.add_marker(pytest.mark.xdist_group(group))
