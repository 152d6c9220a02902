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

from data_pipelines import input_pipeline
from data_pipelines import length_buckets
from hgr_jax import binary_selection
from hgr_jax import evaluate as evaluate_lib
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


def zero_batch(element_spec, batch_size=2):
  """Zeros with the shapes and dtypes of a batch spec, `batch_size` rows.

  Args:
    element_spec: dict of tf.TensorSpec (a dataset's element_spec) or of
      anything with shape and dtype (arrays, jax.ShapeDtypeStruct); the
      leading axis is the batch.
  """
  return jax.tree.map(
      lambda spec: np.zeros((batch_size, *spec.shape[1:]),
                            tf.dtypes.as_dtype(spec.dtype).as_numpy_dtype),
      element_spec)


def create_train_state(model, config, element_spec, mesh):
  """Initialises parameters and optimiser state, replicated over `mesh`.

  Args:
    model: a `DualEncoder`.
    config: the experiment config (seed, optimiser settings).
    element_spec: the training dataset's element_spec (see `zero_batch`).
    mesh: the device mesh.
  """
  params_rng, dropout_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  replicated = sharding.replicated(mesh)
  init = lambda rng: model.init(rng, zero_batch(element_spec))
  variables = jax.jit(init, out_shardings=replicated)(params_rng)
  # The optimiser state is built by a second program: XLA:CPU (jaxlib 0.10)
  # deadlocked on one program holding both the orthogonal initialisers and
  # the Adam state at width 1024. Jitted, not eager: one compilation instead
  # of one per parameter and moment.
  create = lambda variables, rng: TrainState.create(
      apply_fn=model.apply, params=variables['params'],
      tx=create_optimizer(config), rng=rng,
      batch_stats=variables.get('batch_stats', {}))
  return jax.jit(create, out_shardings=replicated)(variables, dropout_rng)


def train_batches(builder, model, config, epoch, local_batch):
  """This host's streamed training batches of `epoch`, with the model's extra
  fields (`DualEncoder.extra_train_features`); its element_spec describes
  the batches of either pair order."""
  return input_pipeline.train_dataset(
      builder, config, epoch, local_batch, jax.process_index(),
      jax.process_count(), extra_features=model.extra_train_features())


def word_buckets(config):
  """The caption lengths training batches are padded to (`length_buckets`).

  Hosts would pick buckets apart, and the global batch needs one shape: with
  several processes every batch keeps config.max_words.
  """
  if jax.process_count() > 1:
    return (config.max_words,)
  return length_buckets.bucket_lengths(config.get('word_buckets'),
                                       config.max_words)


def loss_and_grads(params, batch_stats, batch, rng, model):
  """The model's training loss (`DualEncoder.train_loss`) and its gradient;
  batch norm uses and updates batch statistics.

  Returns:
    ((loss, (per-term losses, new batch_stats)), grads).
  """
  def loss_fn(params):
    (loss, terms), updates = model.apply(
        {'params': params, 'batch_stats': batch_stats}, batch,
        rngs={'dropout': rng}, mutable=['batch_stats'],
        method=model.train_loss)
    return loss, (terms, updates.get('batch_stats', batch_stats))
  return jax.value_and_grad(loss_fn, has_aux=True)(params)


def train_step(state, batch, model):
  """One optimiser step; a pure function of (state, batch)."""
  rng = jax.random.fold_in(state.rng, state.step)
  (loss, (terms, batch_stats)), grads = loss_and_grads(
      state.params, state.batch_stats, batch, rng, model)
  metrics = {'loss': loss, 'grad_norm': optax.global_norm(grads),
             **{f'loss_{name}': value for name, value in terms.items()}}
  state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  return state, metrics


def compile_train_step(model, mesh, state):
  """`train_step` jitted with explicit shardings, the state donated."""
  state_sharding = jax.tree.map(lambda x: x.sharding, state)
  return jax.jit(functools.partial(train_step, model=model),
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
        config.word_embeddings_file, vocab, config.model.word_dim)
  model = models.create_model(config, max(vocab.values()) + 1,
                              embedding_init=embedding_init)
  return builder, model, sharding.data_mesh()


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
  builder, model, mesh = setup(config)
  process_count = jax.process_count()
  if config.batch_size % (jax.device_count()) or \
      config.batch_size % process_count:
    raise ValueError(f'config.batch_size={config.batch_size} must divide '
                     f'evenly over {jax.device_count()} devices.')
  local_batch = config.batch_size // process_count

  element_spec = train_batches(builder, model, config, 0,
                               local_batch).element_spec
  state = create_train_state(model, config, element_spec, mesh)
  manager = checkpoint_manager(workdir)
  start_epoch = 0
  if manager.latest_step() is not None:
    state, start_epoch = restore(manager, manager.latest_step(), state)
    logging.info('Resumed from step %d (epoch %d).', manager.latest_step(),
                 start_epoch)

  step_fn = compile_train_step(model, mesh, state)
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
      builder, config, local_batch, jax.process_index(), process_count,
      model.extra_train_features())
  buckets = word_buckets(config)
  step = int(state.step)
  for epoch in range(start_epoch, config.num_epochs):
    train_metrics = []
    batches = itertools.islice(batches_of_epoch(epoch), steps_per_epoch)
    for batch in batches:
      batch = length_buckets.trim_to_bucket(batch, buckets)
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
  builder, model, mesh = setup(config)
  manager = checkpoint_manager(workdir)
  if manager.best_step() is None:
    raise FileNotFoundError(
        f'No checkpoint in {os.path.join(workdir, "checkpoints")}: train '
        f'first (python -m hgr_jax.main --config=... --workdir={workdir}).')
  element_spec = train_batches(
      builder, model, config, 0,
      config.batch_size // jax.process_count()).element_spec
  state = create_train_state(model, config, element_spec, mesh)
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
               metrics_lib.format_table({config.model_name: results}))
  if config.binary_selection:
    logging.info('Binary selection accuracy (%%):\n%s',
                 binary_selection.format_table({config.model_name: results}))
  return results
