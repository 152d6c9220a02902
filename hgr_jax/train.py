"""Training loop: sharded train step, per-epoch validation, orbax checkpoints."""

import functools
import itertools
import json
import math
import os
from typing import Any

from absl import logging
from clu import metric_writers
from clu import periodic_actions
import flax
from flax.training import train_state
import jax
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers
import tensorflow as tf

from data_pipelines import concepts
from data_pipelines import input_pipeline
from hgr_jax import binary_selection
from hgr_jax import evaluate as evaluate_lib
from hgr_jax import losses
from hgr_jax import metrics as metrics_lib
from hgr_jax import models
from hgr_jax import sharding
from hgr_jax import word_embeddings

TEST_METRICS_FILE = 'test_metrics.json'


class TrainState(train_state.TrainState):
  """Flax train state plus the base key that dropout keys are folded from.

  batch_stats holds the running batch-norm statistics of models that have
  them (HANet) and is empty for the others.
  """
  rng: jax.Array
  batch_stats: Any

  @property
  def variables(self):
    """What `model.apply` takes for evaluation: params and batch_stats."""
    return {'params': self.params, 'batch_stats': self.batch_stats}


def create_optimizer(config):
  """Adam (HGR: lr 1e-4), after global-norm gradient clipping unless
  config.grad_clip_norm is None or inf (the official codes do not clip)."""
  adam = optax.adam(config.learning_rate)
  clip = config.grad_clip_norm
  if clip is None or math.isinf(clip):
    return adam
  return optax.chain(optax.clip_by_global_norm(clip), adam)


def dummy_batch(config, feature_dim, batch_size=2):
  """Zero inputs with the shapes of a training batch, for initialisation."""
  nodes = 1 + config.num_verbs + config.num_nouns
  return {
      'frames': np.zeros((batch_size, config.max_frames, feature_dim),
                         np.float32),
      'frame_mask': np.ones((batch_size, config.max_frames), bool),
      'video_key': np.arange(batch_size, dtype=np.int32),
      'token_ids': np.zeros((batch_size, config.max_words), np.int32),
      'length': np.ones((batch_size,), np.int32),
      'verb_masks': np.zeros((batch_size, config.num_verbs, config.max_words),
                             bool),
      'noun_masks': np.zeros((batch_size, config.num_nouns, config.max_words),
                             bool),
      'node_roles': np.zeros((batch_size, config.num_verbs + config.num_nouns),
                             np.int32),
      'adjacency': np.zeros((batch_size, nodes, nodes), np.float32),
      **concepts.dummy_labels(config, batch_size),
  }


def create_train_state(model, config, feature_dim, mesh):
  """Initialises parameters and optimiser state, replicated over `mesh`."""
  params_rng, dropout_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  replicated = sharding.replicated(mesh)
  init = lambda rng: model.init(rng, dummy_batch(config, feature_dim))
  variables = jax.jit(init, out_shardings=replicated)(params_rng)
  # The optimiser state is built outside that jit on purpose: XLA:CPU
  # (jaxlib 0.10) deadlocks on one program holding both the orthogonal
  # initialisers and the Adam state at width 1024.
  state = TrainState.create(apply_fn=model.apply, params=variables['params'],
                            tx=create_optimizer(config), rng=dropout_rng,
                            batch_stats=variables.get('batch_stats', {}))
  return jax.device_put(state, replicated)


def loss_and_grads(params, batch_stats, batch, rng, model, config):
  """Hinge loss on the batch's score matrices (plus the model's auxiliary
  losses) and its gradient; batch norm uses and updates batch statistics.

  Returns:
    ((loss, (per-term losses, new batch_stats)), grads).
  """
  def loss_fn(params):
    (scores, auxiliary), updates = model.apply(
        {'params': params, 'batch_stats': batch_stats}, batch, train=True,
        rngs={'dropout': rng}, mutable=['batch_stats'],
        method=model.train_outputs)
    same_video = batch['video_key'][:, None] == batch['video_key'][None, :]
    loss, terms = losses.retrieval_loss(
        scores, same_video, config.margin, config.loss_weights.to_dict(),
        config.mask_same_video_negatives)
    loss = loss + sum(auxiliary.values())
    return loss, ({**terms, **auxiliary},
                  updates.get('batch_stats', batch_stats))
  return jax.value_and_grad(loss_fn, has_aux=True)(params)


def train_step(state, batch, model, config):
  """One optimiser step; a pure function of (state, batch)."""
  rng = jax.random.fold_in(state.rng, state.step)
  (loss, (terms, batch_stats)), grads = loss_and_grads(
      state.params, state.batch_stats, batch, rng, model, config)
  metrics = {'loss': loss, 'grad_norm': optax.global_norm(grads),
             **{f'loss_{name}': value for name, value in terms.items()}}
  state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  return state, metrics


def compile_train_step(model, config, mesh, state):
  """`train_step` jitted with explicit shardings, the state donated."""
  state_sharding = jax.tree.map(lambda x: x.sharding, state)
  return jax.jit(functools.partial(train_step, model=model, config=config),
                 in_shardings=(state_sharding, sharding.batch_sharded(mesh)),
                 out_shardings=(state_sharding, sharding.replicated(mesh)),
                 donate_argnums=0)


def checkpoint_manager(workdir):
  """Keeps the latest checkpoint and the best one by validation rsum."""
  rsum = lambda metrics: metrics['rsum']
  options = ocp.CheckpointManagerOptions(
      best_fn=rsum, best_mode='max',
      preservation_policy=checkpoint_managers.AnyPreservationPolicy([
          checkpoint_managers.LatestN(n=1),
          checkpoint_managers.BestN(get_metric_fn=rsum, n=1),
      ]))
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir),
                                            'checkpoints'), options=options)


def restore(manager, step, state):
  """Restores (state, epoch) of `step` with `state`'s shapes and shardings."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract),
      progress=ocp.args.JsonRestore()))
  return restored['state'], restored['progress']['epoch']


def setup(config):
  """Prepares the dataset and builds the model and the mesh."""
  tf.config.set_visible_devices([], 'GPU')  # Keep accelerators for JAX.
  builder = input_pipeline.prepare(input_pipeline.get_builder(config),
                                  manual_dir=config.get('release_dir'))
  vocab = input_pipeline.vocabulary(builder)
  embedding_init = None
  if config.get('word_embeddings_file'):
    embedding_init = word_embeddings.glove_initializer(
        config.word_embeddings_file, vocab, config.word_dim)
  model = models.create_model(config, max(vocab.values()) + 1,
                              embedding_init=embedding_init)
  feature_dim = builder.info.features['frames'].shape[-1]
  return builder, model, feature_dim, sharding.data_mesh()


def _evaluator(model, config):
  """An evaluator over this host's devices.

  Every host scores the whole split on its own devices, so evaluation needs
  no cross-host communication and works the same on one host or many.
  """
  return evaluate_lib.Evaluator(model,
                                sharding.data_mesh(jax.local_devices()),
                                config.eval_batch_size,
                                config.eval_memory_budget_gb,
                                config.eval_bfloat16)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains, validating and checkpointing each epoch, then tests the best.

  Restarting with the same workdir resumes from the latest checkpoint.

  Returns:
    The test metrics of the best checkpoint (also in WORKDIR/test_metrics.json).
  """
  builder, model, feature_dim, mesh = setup(config)
  process_count = jax.process_count()
  if config.batch_size % (jax.device_count()) or \
      config.batch_size % process_count:
    raise ValueError(f'config.batch_size={config.batch_size} must divide '
                     f'evenly over {jax.device_count()} devices.')
  local_batch = config.batch_size // process_count

  state = create_train_state(model, config, feature_dim, mesh)
  manager = checkpoint_manager(workdir)
  start_epoch = 0
  if manager.latest_step() is not None:
    state, start_epoch = restore(manager, manager.latest_step(), state)
    logging.info('Resumed from step %d (epoch %d).', manager.latest_step(),
                 start_epoch)

  step_fn = compile_train_step(model, config, mesh, state)
  evaluator = _evaluator(model, config)
  writer = metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0)
  if start_epoch == 0:
    writer.write_hparams(dict(flax.traverse_util.flatten_dict(
        config.to_dict(), sep='.')))
  steps_per_epoch = input_pipeline.steps_per_epoch(builder, local_batch,
                                                   process_count)
  total_steps = steps_per_epoch * config.num_epochs
  report_progress = periodic_actions.ReportProgress(num_train_steps=total_steps,
                                                    writer=writer)
  logging.info('%d steps per epoch, %d epochs, %d devices.', steps_per_epoch,
               config.num_epochs, jax.device_count())

  batches_of_epoch = input_pipeline.epoch_batches(
      builder, config, local_batch, jax.process_index(), process_count)
  step = int(state.step)
  for epoch in range(start_epoch, config.num_epochs):
    train_metrics = []
    batches = itertools.islice(batches_of_epoch(epoch), steps_per_epoch)
    for batch in batches:
      state, metrics = step_fn(state, sharding.global_batch(batch, mesh))
      train_metrics.append(metrics)
      step += 1
      report_progress(step)
      if step % config.log_every_steps == 0:
        summary = jax.tree.map(lambda *x: float(np.mean(x)),
                               *jax.device_get(train_metrics))
        writer.write_scalars(step, {f'train_{k}': v for k, v in summary.items()})
        train_metrics = []

    validation = evaluator.evaluate(jax.device_get(state.variables), builder,
                                    'validation', config)
    writer.write_scalars(step, {f'val_{k}': v for k, v in validation.items()})
    logging.info('Epoch %d: validation rsum %.1f', epoch + 1,
                 validation['rsum'])
    manager.save(step, metrics=validation, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        progress=ocp.args.JsonSave({'epoch': epoch + 1})))
  manager.wait_until_finished()
  writer.flush()
  return _test_best(config, workdir, builder, model, manager, state)


def evaluate_workdir(config, workdir):
  """Tests the best checkpoint of `workdir`; see `_test_best`."""
  builder, model, feature_dim, mesh = setup(config)
  manager = checkpoint_manager(workdir)
  if manager.best_step() is None:
    raise FileNotFoundError(
        f'No checkpoint in {os.path.join(workdir, "checkpoints")}: train '
        f'first (python -m hgr_jax.main --config=... --workdir={workdir}).')
  state = create_train_state(model, config, feature_dim, mesh)
  return _test_best(config, workdir, builder, model, manager, state)


def _test_best(config, workdir, builder, model, manager, state):
  """Restores the best checkpoint into `state` and evaluates it on test.

  Returns:
    The metrics dict, also written to WORKDIR/test_metrics.json.
  """
  best_step = manager.best_step()
  state, _ = restore(manager, best_step, state)
  evaluator = _evaluator(model, config)
  variables = jax.device_get(state.variables)
  results = evaluator.evaluate(variables, builder, 'test', config)
  if config.binary_selection:
    results.update(binary_selection.evaluate(evaluator, variables, builder,
                                             'test', config))
  results['checkpoint_step'] = int(best_step)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, TEST_METRICS_FILE), 'w') as f:
      json.dump(results, f, indent=2, sort_keys=True)
  logging.info('Test metrics of step %d:\n%s', best_step,
               metrics_lib.format_table({config.model: results}))
  if config.binary_selection:
    logging.info('Binary selection accuracy (%%):\n%s',
                 binary_selection.format_table({config.model: results}))
  return results
