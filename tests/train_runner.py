"""hgr_jax.main with hooks for the tests that train in other processes
(tests/test_scale.py), on the config of tests/tiny_train_config.py.

  python -m tests.train_runner --config=tests/tiny_train_config.py --workdir=W \
      --config.data_dir=D [--losses=F] [--kill_at_step=K] \
      [--emulate_processes=N] [--restored_params=P] [main's flags]
"""

import os
import signal

from absl import app
from absl import flags
import flax
import jax
import numpy as np

from data_pipelines import input_pipeline
from hgr_jax import main as main_lib
from hgr_jax import train

flags.DEFINE_string('losses', None,
                    'Process 0 appends "step loss" here after every step.')
flags.DEFINE_integer('kill_at_step', None,
                     'SIGKILLs this process right after this step.')
flags.DEFINE_integer('emulate_processes', 1,
                     'One process reads the data as this many processes '
                     'would and trains on their batches concatenated.')
flags.DEFINE_string('restored_params', None,
                    'Every restore writes the params to P.<process>.npz.')
FLAGS = flags.FLAGS


def _record_steps():
  compile_train_step = train.compile_train_step

  def compile_recorded(*args):
    step_fn = compile_train_step(*args)

    def recorded(state, batch):
      state, metrics = step_fn(state, batch)
      step = int(state.step)
      if FLAGS.losses and jax.process_index() == 0:
        with open(FLAGS.losses, 'a') as f:
          f.write(f'{step} {float(metrics["loss"])!r}\n')
      if step == FLAGS.kill_at_step:
        os.kill(os.getpid(), signal.SIGKILL)
      return state, metrics
    return recorded
  train.compile_train_step = compile_recorded


def _emulate_processes(count):
  """Global batches of `count` processes: the batches of their shares of the
  data concatenated in process order, as `sharding.global_batch` lays them
  out over the devices."""
  epoch_batches = input_pipeline.epoch_batches
  steps_per_epoch = input_pipeline.steps_per_epoch

  def concatenated(builder, config, batch_size, process_index=0,
                   process_count=1, extra_features=None):
    del process_index, process_count
    hosts = [epoch_batches(builder, config, batch_size // count, index, count,
                           extra_features) for index in range(count)]

    def batches(epoch, skip=0):
      for parts in zip(*(host(epoch, skip) for host in hosts)):
        yield {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return batches

  input_pipeline.epoch_batches = concatenated
  input_pipeline.steps_per_epoch = (
      lambda builder, batch_size, process_count=1: steps_per_epoch(
          builder, batch_size // count, count))


def _save_restored(path):
  restore = train.restore

  def restore_and_save(manager, step, state):
    state, progress = restore(manager, step, state)
    params = flax.traverse_util.flatten_dict(jax.device_get(state.params),
                                             sep='/')
    np.savez(f'{path}.{jax.process_index()}.npz', **params)
    return state, progress
  train.restore = restore_and_save


def main(argv):
  _record_steps()
  if FLAGS.emulate_processes > 1:
    _emulate_processes(FLAGS.emulate_processes)
  if FLAGS.restored_params:
    _save_restored(FLAGS.restored_params)
  main_lib.main(argv)


if __name__ == '__main__':
  app.run(main)
