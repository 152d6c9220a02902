"""Pairs per second of the compiled HGR train step.

  python -m benchmarks.train_throughput [--batch_sizes=64,128] [--repeats=5]
      [--steps=10] [--config=configs/synthetic.py] [--out=train_throughput.json]

One batch of the config's training data (prepared into --config.data_dir or
$TFDS_DATA_DIR if needed), with the fields the model requests; each repeat
times `steps` consecutive steps (after one compile-and-warm-up step) and
blocks on the result, and the table reports the median over repeats. The result goes to --out as JSON.
"""

import json
import os
import statistics
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags
import tensorflow_datasets as tfds

from data_pipelines import input_pipeline
from hgr_jax import models
from hgr_jax import sharding
from hgr_jax import train

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/synthetic.py')
_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['64', '128'], 'Global batches.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed repeats per batch size.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Train steps per repeat.')
_OUT = flags.DEFINE_string('out', 'train_throughput.json', 'JSON output path.')


def main(argv):
  del argv
  config = _CONFIG.value
  builder = input_pipeline.prepare(input_pipeline.get_builder(config),
                                   manual_dir=config.get('release_dir'))
  model = models.create_model(
      config, max(input_pipeline.vocabulary(builder).values()) + 1)
  mesh = sharding.data_mesh()
  rows = []
  for batch_size in map(int, _BATCH_SIZES.value):
    batches = input_pipeline.train_dataset(
        builder, config, 0, batch_size,
        extra_features=model.extra_train_features())
    state = train.create_train_state(model, config, batches.element_spec, mesh)
    step = train.compile_train_step(model, mesh, state)
    batch = sharding.global_batch(next(iter(tfds.as_numpy(batches))), mesh)
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    seconds = []
    for _ in range(_REPEATS.value):
      start = time.perf_counter()
      for _ in range(_STEPS.value):
        state, metrics = step(state, batch)
      jax.block_until_ready(metrics)
      seconds.append((time.perf_counter() - start) / _STEPS.value)
    median = statistics.median(seconds)
    rows.append(dict(model=config.model_name, batch_size=batch_size,
                     hidden_size=config.model.hidden_size,
                     median_step_seconds=median,
                     pairs_per_second=batch_size / median,
                     step_seconds=seconds))
  device = f'{jax.device_count()} x {jax.devices()[0].device_kind}'
  print(f'HGR train step, {device}, {os.cpu_count()} host cores, '
        f'median of {_REPEATS.value} x {_STEPS.value} steps')
  print(f'{"model":>6} {"batch":>6} {"hidden":>6} {"s/step":>8} {"pairs/s":>9}')
  for r in rows:
    print(f'{r["model"]:>6} {r["batch_size"]:>6} {r["hidden_size"]:>6} '
          f'{r["median_step_seconds"]:>8.3f} {r["pairs_per_second"]:>9.1f}')
  with open(_OUT.value, 'w') as f:
    json.dump(dict(device=device, rows=rows), f, indent=2)


if __name__ == '__main__':
  app.run(main)
