"""Training: the loss falls, checkpoints restore exactly, runs resume."""

import json
import os
import signal

import jax
import numpy as np
import optax
import pytest
import tensorflow_datasets as tfds

from conftest import tiny_config
from conftest import train_element_spec
from data_pipelines import input_pipeline
from hgr_jax import evaluate
from hgr_jax import models
from hgr_jax import sharding
from hgr_jax import train


def _model_and_first_batch(config):
  builder = input_pipeline.get_builder(config)
  model = models.create_model(config, len(input_pipeline.vocabulary(builder)))
  batches = input_pipeline.train_dataset(
      builder, config, epoch=0, batch_size=config.batch_size,
      extra_features=model.extra_train_features())
  return model, next(iter(tfds.as_numpy(batches)))


@pytest.mark.parametrize('name', ['hgr', 'hanet', 'hcmi'])
def test_train_steps_lower_the_loss_and_restore_exactly(tiny_data_dir,
                                                        tmp_path, name):
  config = tiny_config(name, data_dir=tiny_data_dir)
  config.model.update({name: 0.0 for name in (
      'text_dropout', 'video_dropout', 'gcn_dropout') if name in config.model})
  model, batch = _model_and_first_batch(config)
  mesh = sharding.data_mesh()
  state = train.create_train_state(model, config, batch, mesh)
  step = train.compile_train_step(model, mesh, state)
  batch = sharding.global_batch(batch, mesh)
  losses = []
  for _ in range(15):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
  assert losses[-1] < 0.5 * losses[0], losses
  assert int(state.step) == 15

  manager = train.checkpoint_manager(str(tmp_path))
  train.save(manager, int(state.step), state, epoch=1, batches=3,
             metrics={'rsum': 1.0})
  manager.wait_until_finished()
  config.seed = 123  # A different initialisation, overwritten by the restore.
  fresh = train.create_train_state(model, config, batch, mesh)
  restored, progress = train.restore(train.checkpoint_manager(str(tmp_path)),
                                     int(state.step), fresh)
  assert progress == {'epoch': 1, 'batches': 3}
  scores = lambda state: model.apply(state.variables, batch)['fused']
  np.testing.assert_array_equal(scores(restored), scores(state))
  for a, b in zip(jax.tree.leaves((restored.opt_state, restored.batch_stats)),
                  jax.tree.leaves((state.opt_state, state.batch_stats))):
    np.testing.assert_array_equal(a, b)
  # HANet's running batch-norm statistics are part of the checkpoint.
  assert bool(jax.tree.leaves(state.batch_stats)) == (name == 'hanet')


@pytest.mark.parametrize('name', ['hgr', 'hanet', 'hcmi'])
def test_evaluator_matches_direct_scoring(tiny_data_dir, name):
  config = tiny_config(name, data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  model = models.create_model(config, len(input_pipeline.vocabulary(builder)))
  mesh = sharding.data_mesh()
  spec = train_element_spec(config, model)
  variables = train.create_train_state(model, config, spec, mesh).variables
  # Running statistics away from their initial values must be used.
  variables['batch_stats'] = jax.tree.map(lambda x: x + 0.5,
                                          variables['batch_stats'])
  # Batches and tiles smaller than the split exercise padding and tiling.
  evaluator = evaluate.Evaluator(model, mesh, batch_size=5,
                                 memory_budget_gb=2e-5)
  videos = list(tfds.as_numpy(input_pipeline.video_dataset(
      builder, 'test', config, 100)))[0]
  captions = list(tfds.as_numpy(input_pipeline.caption_dataset(
      builder, 'test', 1000)))[0]
  direct = model.apply(variables, {**videos, **captions})
  encoded_videos = evaluator.encode_videos(variables, [videos])
  encoded_captions = evaluator.encode_captions(variables, [captions])
  tile_videos, tile_captions = evaluator.tile_shape(variables, encoded_videos,
                                                    encoded_captions)
  assert tile_videos < 16 and tile_captions < len(captions['length'])
  tiled = evaluator.score_matrix(variables, encoded_videos, encoded_captions)
  assert set(tiled) == set(direct)
  for level in direct:
    np.testing.assert_allclose(tiled[level], direct[level], atol=1e-5,
                               err_msg=level)
  if name == 'hanet':
    fresh = train.create_train_state(model, config, spec, mesh).variables
    assert not np.allclose(model.apply(fresh, {**videos, **captions})['fused'],
                           direct['fused'])


def test_train_and_evaluate_resumes(tiny_data_dir, tmp_path):
  config = tiny_config(data_dir=tiny_data_dir)
  config.num_epochs = 1
  config.keep_checkpoints = 1
  workdir = str(tmp_path)
  first = train.train_and_evaluate(config, workdir)
  steps_per_epoch = first['checkpoint_step']
  assert steps_per_epoch > 0
  config.num_epochs = 2  # Resumes at epoch 1 and trains one more epoch.
  second = train.train_and_evaluate(config, workdir)
  manager = train.checkpoint_manager(workdir)
  assert manager.latest_step() == 2 * steps_per_epoch
  # Only the latest and the best checkpoints are kept.
  assert set(manager.all_steps()) == {manager.latest_step(),
                                      second['checkpoint_step']}
  with open(os.path.join(workdir, train.TEST_METRICS_FILE)) as f:
    assert json.load(f)['rsum'] == second['rsum']


def test_optimizer_clips_only_with_a_finite_norm():
  config = tiny_config()
  params = {'w': np.zeros(3, np.float32)}
  adam_state = optax.adam(config.learning_rate).init(params)
  structure = lambda tx: jax.tree.structure(tx.init(params))
  for unclipped in (float('inf'), None):
    config.grad_clip_norm = unclipped
    assert structure(train.create_optimizer(config)) == jax.tree.structure(
        adam_state)
  config.grad_clip_norm = 2.0
  assert structure(train.create_optimizer(config)) != jax.tree.structure(
      adam_state)


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(
    tiny_data_dir, tmp_path, monkeypatch):
  config = tiny_config(data_dir=tiny_data_dir)
  config.update(dict(num_epochs=1, log_every_steps=5, checkpoint_every_steps=5,
                     keep_checkpoints=3))
  read_batches = input_pipeline.epoch_batches

  def poisoned_batches(*args, **kwargs):
    batches_of_epoch = read_batches(*args, **kwargs)

    def batches(epoch, skip=0):
      for index, batch in enumerate(batches_of_epoch(epoch, skip), skip):
        if index == 6:  # Step 7.
          batch = {**batch, 'frames': np.full_like(batch['frames'], np.nan)}
        yield batch
    return batches

  monkeypatch.setattr(input_pipeline, 'epoch_batches', poisoned_batches)
  with pytest.raises(train.NonFiniteLossError,
                     match=r'stopped at step 7: loss nan.*last good '
                     r'checkpoint, step 5 .*is kept.*learning_rate'):
    train.train_and_evaluate(config, str(tmp_path))
  manager = train.checkpoint_manager(str(tmp_path))
  assert manager.all_steps() == [5]
  restored = manager.restore(5)
  assert all(np.isfinite(x).all()
             for x in jax.tree.leaves(restored['state']['params']))


def test_sigterm_saves_at_the_next_step_and_stops(tiny_data_dir, tmp_path,
                                                  monkeypatch):
  config = tiny_config('vsepp', data_dir=tiny_data_dir)
  config.update(dict(num_epochs=1, binary_selection=False))
  read_batches = input_pipeline.epoch_batches

  def batches_then_sigterm(*args, **kwargs):
    batches_of_epoch = read_batches(*args, **kwargs)

    def batches(epoch, skip=0):
      for index, batch in enumerate(batches_of_epoch(epoch, skip), skip):
        if index == 12:  # Arrives while step 12 is dispatched.
          os.kill(os.getpid(), signal.SIGTERM)
        yield batch
    return batches

  monkeypatch.setattr(input_pipeline, 'epoch_batches', batches_then_sigterm)
  previous = signal.getsignal(signal.SIGTERM)
  with pytest.raises(train.Preempted, match='Stopped at step 13 on SIGTERM'):
    train.train_and_evaluate(config, str(tmp_path))
  assert signal.getsignal(signal.SIGTERM) is previous
  manager = train.checkpoint_manager(str(tmp_path))
  assert manager.all_steps() == [13]
  assert manager.restore(13)['progress'] == {'epoch': 0, 'batches': 13}
