"""Training loop: sharded train step, per-epoch validation, orbax checkpoints."""

import functools
import itertools
import json
import math
import os
import signal
import threading
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
from hgr_jax import clip_checkpoint
from hgr_jax import evaluate as evaluate_lib
from hgr_jax import metrics as metrics_lib
from hgr_jax import models
from hgr_jax import platform
from hgr_jax import sharding
from hgr_jax import word_embeddings
from hgr_jax.models import text_encoders

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


def _in_clip_tower(path):
  return any(getattr(key, 'key', None) == text_encoders.CLIP_TOWER
             for key in path)


def create_optimizer(config):
  """Adam (HGR: lr 1e-4), after global-norm gradient clipping unless
  config.grad_clip_norm is None or inf (the official codes do not clip).

  With config.text_encoder='clip', the pretrained tower's parameters take
  their own Adam at config.clip_learning_rate, or stay frozen when it is 0.
  """
  adam = optax.adam(config.learning_rate)
  if config.get('text_encoder', 'bigru') == 'clip':
    tower = (optax.adam(config.clip_learning_rate)
             if config.clip_learning_rate else optax.set_to_zero())
    labels = lambda params: jax.tree_util.tree_map_with_path(
        lambda path, _: 'clip' if _in_clip_tower(path) else 'rest', params)
    adam = optax.multi_transform({'clip': tower, 'rest': adam}, labels)
  clip = config.grad_clip_norm
  if clip is None or math.isinf(clip):
    return adam
  return optax.chain(optax.clip_by_global_norm(clip), adam)


def pretrained_params(config, params):
  """`params` with the CLIP text tower's weights of config.clip_dir in
  place of their initialisation, if the config uses that tower."""
  if config.get('text_encoder', 'bigru') != 'clip':
    return params
  _, tower = clip_checkpoint.load_tower(config.clip_dir, 'text')
  return clip_checkpoint.replace_towers(params, text_encoders.CLIP_TOWER,
                                        tower)


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
  variables = dict(variables, params=jax.device_put(
      pretrained_params(config, variables['params']), replicated))
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


def frozen_clip_tower(config):
  """Whether the config trains a CLIP text tower at learning rate 0."""
  return (config.get('text_encoder', 'bigru') == 'clip' and
          not config.clip_learning_rate)


def stop_tower_gradient(params):
  """`params` with the CLIP tower's leaves behind stop_gradient: their
  gradients are zero and XLA does not compute the tower's backward pass."""
  return jax.tree_util.tree_map_with_path(
      lambda path, leaf: (jax.lax.stop_gradient(leaf)
                          if _in_clip_tower(path) else leaf), params)


def loss_and_grads(params, batch_stats, batch, rng, model, freeze_tower=False):
  """The model's training loss (`DualEncoder.train_loss`) and its gradient;
  batch norm uses and updates batch statistics.

  Args:
    freeze_tower: no gradient for the CLIP text tower (`frozen_clip_tower`).

  Returns:
    ((loss, (per-term losses, new batch_stats)), grads).
  """
  def loss_fn(params):
    if freeze_tower:
      params = stop_tower_gradient(params)
    (loss, terms), updates = model.apply(
        {'params': params, 'batch_stats': batch_stats}, batch,
        rngs={'dropout': rng}, mutable=['batch_stats'],
        method=model.train_loss)
    return loss, (terms, updates.get('batch_stats', batch_stats))
  return jax.value_and_grad(loss_fn, has_aux=True)(params)


def train_step(state, batch, model, freeze_tower=False):
  """One optimiser step; a pure function of (state, batch)."""
  rng = jax.random.fold_in(state.rng, state.step)
  (loss, (terms, batch_stats)), grads = loss_and_grads(
      state.params, state.batch_stats, batch, rng, model, freeze_tower)
  metrics = {'loss': loss, 'grad_norm': optax.global_norm(grads),
             **{f'loss_{name}': value for name, value in terms.items()}}
  state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  return state, metrics


def compile_train_step(model, mesh, state, freeze_tower=False):
  """`train_step` jitted with explicit shardings, the state donated."""
  state_sharding = jax.tree.map(lambda x: x.sharding, state)
  step = functools.partial(train_step, model=model, freeze_tower=freeze_tower)
  return jax.jit(sharding.on_mesh(step, mesh),
                 in_shardings=(state_sharding, sharding.batch_sharded(mesh)),
                 out_shardings=(state_sharding, sharding.replicated(mesh)),
                 donate_argnums=0)


def checkpoint_manager(workdir, keep_latest=1):
  """Keeps the latest `keep_latest` checkpoints and the best one by
  validation rsum (only epoch-end checkpoints have validation metrics)."""
  rsum = lambda metrics: metrics['rsum']
  options = ocp.CheckpointManagerOptions(
      best_fn=rsum, best_mode='max',
      preservation_policy=checkpoint_managers.AnyPreservationPolicy([
          checkpoint_managers.LatestN(n=keep_latest),
          checkpoint_managers.BestN(get_metric_fn=rsum, n=1,
                                    keep_checkpoints_without_metrics=False),
      ]))
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir),
                                            'checkpoints'), options=options)


def save(manager, step, state, epoch, batches, metrics=None):
  """Saves `state` at `step`; the run goes on with batch `batches` (0-based)
  of epoch `epoch`, which the data position in the checkpoint records."""
  manager.save(step, metrics=metrics, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      progress=ocp.args.JsonSave({'epoch': epoch, 'batches': batches})))


def restore(manager, step, state):
  """Restores `step` with `state`'s shapes and shardings.

  Returns:
    (state, progress): progress['epoch'] is the epoch to continue and
    progress['batches'] how many of its batches were already trained on.
  """
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract),
      progress=ocp.args.JsonRestore()))
  progress = restored['progress']
  # Checkpoints written before step checkpoints existed are all epoch ends.
  return restored['state'], {'epoch': progress['epoch'],
                             'batches': progress.get('batches', 0)}


class NonFiniteLossError(FloatingPointError):
  """A training step produced a NaN or Inf loss or gradient."""


class Preempted(Exception):
  """The run was asked to stop (SIGTERM) and saved a checkpoint first."""


def check_finite(step_metrics, last_step, manager, config):
  """Raises `NonFiniteLossError` naming the first step whose loss or gradient
  norm is NaN or Inf.

  The global gradient norm is finite only if every gradient is, so two
  scalars per step cover the loss and all gradients. Checkpoints in flight
  (of steps checked before) are completed first, so the message names the
  last good one, which is kept.

  Args:
    step_metrics: metrics dicts of consecutive steps ending at `last_step`
      (device arrays: fetched here).
    last_step: the step of the last dict.
  """
  fetched = jax.device_get(step_metrics)
  for offset, metrics in enumerate(fetched):
    loss, grad_norm = float(metrics['loss']), float(metrics['grad_norm'])
    if math.isfinite(loss) and math.isfinite(grad_norm):
      continue
    step = last_step - len(fetched) + offset + 1
    manager.wait_until_finished()
    good = manager.latest_step()
    kept = ('no checkpoint was written yet' if good is None else
            f'the last good checkpoint, step {good} in {manager.directory}, '
            'is kept and a rerun of the same command resumes from it')
    clipping = ('' if math.isfinite(config.grad_clip_norm or math.inf) else
                ' and gradients are not clipped (--config.grad_clip_norm)')
    raise NonFiniteLossError(
        f'Training stopped at step {step}: loss {loss}, gradient norm '
        f'{grad_norm}; {kept}. Likely cause: the learning rate '
        f'(--config.learning_rate={config.learning_rate}) is too high for '
        f'this model and data{clipping}; the input features were checked '
        'for NaN and Inf when the dataset was prepared.')
  return fetched


class PreemptionWatch:
  """Tells whether the run was asked to stop, as preemption asks: SIGTERM.

  With several processes JAX's preemption service (through orbax) makes
  every host see the request at the same step, so they save together; a
  single process catches SIGTERM itself. A context manager: the previous
  SIGTERM handler is put back on exit.
  """

  def __init__(self, manager):
    self._manager = manager
    self._requested = False
    self._previous = None

  def __enter__(self):
    if jax.process_count() == 1 and \
        threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
    return self

  def __exit__(self, *exc_info):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)

  def _on_sigterm(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM: saving a checkpoint after this step.')
    self._requested = True

  def reached(self, step):
    """Whether to save and stop after `step`."""
    if jax.process_count() > 1:
      return self._manager.reached_preemption(step)
    return self._requested


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
  manager = checkpoint_manager(workdir, config.keep_checkpoints)
  progress = {'epoch': 0, 'batches': 0}
  if manager.latest_step() is not None:
    state, progress = restore(manager, manager.latest_step(), state)
    logging.info('Resumed from step %d (epoch %d, batch %d).',
                 manager.latest_step(), progress['epoch'],
                 progress['batches'])

  step_fn = compile_train_step(model, mesh, state, frozen_clip_tower(config))
  evaluator = _evaluator(model, config)
  writer = metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0)
  if manager.latest_step() is None:
    writer.write_hparams(dict(flax.traverse_util.flatten_dict(
        config.to_dict(), sep='.')))
  steps_per_epoch = input_pipeline.steps_per_epoch(builder, local_batch,
                                                   process_count)
  total_steps = steps_per_epoch * config.num_epochs
  report_progress = periodic_actions.ReportProgress(num_train_steps=total_steps,
                                                    writer=writer)
  logging.info('%d steps per epoch, %d epochs, %d devices.', steps_per_epoch,
               config.num_epochs, jax.device_count())
  if 'gru_matmul_dtype' in config.model:
    logging.info(platform.describe_matmul_dtype(config.model.gru_matmul_dtype))

  batches_of_epoch = input_pipeline.epoch_batches(
      builder, config, local_batch, jax.process_index(), process_count,
      model.extra_train_features())
  buckets = word_buckets(config)
  step = int(state.step)
  with PreemptionWatch(manager) as preemption:
    for epoch in range(progress['epoch'], config.num_epochs):
      # The metrics of the steps the host has not checked yet: fetching
      # them every step would stall the dispatch of the next one.
      train_metrics = []
      done = progress['batches'] if epoch == progress['epoch'] else 0
      batches = itertools.islice(batches_of_epoch(epoch, done),
                                 steps_per_epoch - done)
      for batch in batches:
        batch = length_buckets.trim_to_bucket(batch, buckets)
        state, metrics = step_fn(state, sharding.global_batch(batch, mesh))
        train_metrics.append(metrics)
        step += 1
        done += 1
        report_progress(step)
        if step % config.log_every_steps == 0:
          summary = jax.tree.map(
              lambda *x: float(np.mean(x)),
              *check_finite(train_metrics, step, manager, config))
          writer.write_scalars(step,
                               {f'train_{k}': v for k, v in summary.items()})
          train_metrics = []
        preempted = preemption.reached(step)
        if done < steps_per_epoch and (
            preempted or step % config.checkpoint_every_steps == 0):
          check_finite(train_metrics, step, manager, config)
          save(manager, step, state, epoch, done)
        if preempted and done < steps_per_epoch:
          break
      else:
        check_finite(train_metrics, step, manager, config)
        validation = evaluator.evaluate(jax.device_get(state.variables),
                                        builder, 'validation', config)
        writer.write_scalars(step,
                             {f'val_{k}': v for k, v in validation.items()})
        logging.info('Epoch %d: validation rsum %.1f', epoch + 1,
                     validation['rsum'])
        save(manager, step, state, epoch + 1, 0, metrics=validation)
        preempted = preemption.reached(step)
      if preempted:
        manager.wait_until_finished()
        writer.flush()
        raise Preempted(
            f'Stopped at step {step} on SIGTERM; checkpoint saved in '
            f'{manager.directory}. Run the same command to resume.')
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
