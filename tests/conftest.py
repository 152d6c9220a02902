"""Shared fixtures: a tiny synthetic dataset and config that train in seconds."""

import hgr_jax  # noqa: F401  (sets XLA flags before JAX starts)
import pytest

from configs import synthetic as synthetic_config
from data_pipelines import input_pipeline


def tiny_config(model='hgr', data_dir=None):
  """The synthetic config shrunk so that a model trains on it in seconds."""
  config = synthetic_config.get_config(model)
  config.data_dir = data_dir
  config.synthetic.update(dict(feature_dim=32, num_train_videos=48,
                               num_validation_videos=16, num_test_videos=16))
  config.update(dict(word_dim=16, hidden_size=32, batch_size=8, num_epochs=2,
                     log_every_steps=5, eval_batch_size=16,
                     learning_rate=1e-3))
  if model == 'hanet':
    config.update(dict(num_verb_concepts=16, num_noun_concepts=32,
                       num_action_clips=4, num_entity_clips=8))
  return config


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
  """A data dir holding the prepared tiny synthetic dataset."""
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  input_pipeline.prepare(input_pipeline.get_builder(tiny_config(data_dir=data_dir)))
  return data_dir


def search_config(data_dir):
  """A small HGR config that ranks most tiny test captions first after two
  epochs (R@1 83% measured); the export and search tests query it."""
  config = tiny_config(data_dir=data_dir)
  config.synthetic.update(dict(feature_dim=64, num_train_videos=400))
  config.update(dict(word_dim=32, hidden_size=64, batch_size=32,
                     learning_rate=3e-3, text_dropout=0.0, video_dropout=0.0,
                     gcn_dropout=0.0, binary_selection=False))
  return config


@pytest.fixture(scope='session')
def trained_workdir(tmp_path_factory):
  """(config, workdir, test metrics) of a small HGR trained once per session."""
  from hgr_jax import train  # pylint: disable=g-import-not-at-top
  config = search_config(str(tmp_path_factory.mktemp('search_tfds')))
  workdir = str(tmp_path_factory.mktemp('search_workdir'))
  return config, workdir, train.train_and_evaluate(config, workdir)
