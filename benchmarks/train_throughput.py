r"""Train steps per second as a user gets them, on a prepared dataset.

  python -m benchmarks.train_throughput [--config=configs/synthetic.py]
      [--batch_sizes=64,128] [--steps=20] [--out=train_throughput.json]

  python -m benchmarks.train_throughput --config=configs/vatex.py \
      --config.release_dir=/data/VATEX --config.data_dir=/data/tfds

Reads the config's training batches (the synthetic dataset by default,
prepared into --config.data_dir or $TFDS_DATA_DIR if needed; a release with
a release config) in the training loop's order and runs the training loop's
own step on them: cut to the length bucket, placed on the devices, the
jitted `train.train_step`. Every length bucket is compiled first. Then two
timings over --steps steps each:

  blocked   each step waits for its result; median seconds per step
  loop      steps dispatched as `train_and_evaluate` does (batches read in
            between, no wait until the last); steps/s, what the training
            log's steps_per_sec shows

The result also goes to --out as JSON.
"""

import json
import os
import statistics
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from data_pipelines import input_pipeline
from data_pipelines import length_buckets
from hgr_jax import platform
from hgr_jax import sharding
from hgr_jax import train

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/synthetic.py')
_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['64', '128'], 'Global batches.')
_STEPS = flags.DEFINE_integer('steps', 20, 'Steps per timing.')
_OUT = flags.DEFINE_string('out', 'train_throughput.json', 'JSON output path.')


def compile_buckets(step_fn, state, batch, buckets, mesh):
  """Runs one step per length bucket, so that timed steps never compile.

  The batch is cut to each bucket whatever its captions' lengths: only the
  shapes matter here.
  """
  for words in buckets:
    state, metrics = step_fn(state, sharding.global_batch(
        length_buckets.cut_words(batch, words), mesh))
  jax.block_until_ready(metrics)
  return state


def time_batch_size(config, batch_size):
  """Blocked median step seconds and the loop's steps/s at `batch_size`."""
  config.batch_size = batch_size
  builder, model, mesh = train.setup(config)
  element_spec = train.train_batches(builder, model, config, 0,
                                     batch_size).element_spec
  state = train.create_train_state(model, config, element_spec, mesh)
  step_fn = train.compile_train_step(model, mesh, state)
  buckets = train.word_buckets(config)
  batches_of_epoch = input_pipeline.epoch_batches(
      builder, config, batch_size, extra_features=model.extra_train_features())
  steps_per_epoch = input_pipeline.steps_per_epoch(builder, batch_size)
  needed = 2 * _STEPS.value + 1
  if steps_per_epoch < needed:
    raise ValueError(f'--steps={_STEPS.value}: the training split has '
                     f'{steps_per_epoch} batches of {batch_size}, fewer than '
                     f'the {needed} needed; lower --steps.')
  batches = batches_of_epoch(0)
  state = compile_buckets(step_fn, state, next(batches), buckets, mesh)

  def step(state, batch):
    batch = length_buckets.trim_to_bucket(batch, buckets)
    return step_fn(state, sharding.global_batch(batch, mesh))

  blocked = []
  for _ in range(_STEPS.value):
    start = time.perf_counter()
    state, metrics = step(state, next(batches))
    jax.block_until_ready(metrics)
    blocked.append(time.perf_counter() - start)
  start = time.perf_counter()
  for _ in range(_STEPS.value):
    state, metrics = step(state, next(batches))
  jax.block_until_ready(metrics)
  loop_steps_per_second = _STEPS.value / (time.perf_counter() - start)
  median = statistics.median(blocked)
  return dict(model=config.model_name, batch_size=batch_size,
              hidden_size=config.model.hidden_size,
              word_buckets=list(buckets),
              blocked_median_step_seconds=median,
              blocked_steps_per_second=1 / median,
              loop_steps_per_second=loop_steps_per_second,
              pairs_per_second=batch_size * loop_steps_per_second,
              blocked_step_seconds=blocked)


def main(argv):
  del argv
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  rows = [time_batch_size(_CONFIG.value, int(b)) for b in _BATCH_SIZES.value]
  device = f'{jax.device_count()} x {jax.devices()[0].device_kind}'
  print(f'{_CONFIG.value.dataset} train step, {device}, {os.cpu_count()} '
        f'host cores, load average {os.getloadavg()[0]:.1f}; {_STEPS.value} '
        'steps per timing')
  print(f'{"model":>6} {"batch":>6} {"hidden":>6} {"blocked s/step":>15} '
        f'{"loop steps/s":>13} {"pairs/s":>8}')
  for r in rows:
    print(f'{r["model"]:>6} {r["batch_size"]:>6} {r["hidden_size"]:>6} '
          f'{r["blocked_median_step_seconds"]:>15.3f} '
          f'{r["loop_steps_per_second"]:>13.2f} {r["pairs_per_second"]:>8.1f}')
  with open(_OUT.value, 'w') as f:
    json.dump(dict(device=device, rows=rows), f, indent=2)


if __name__ == '__main__':
  app.run(main)
