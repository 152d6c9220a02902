r"""Train step time, ours against the official code, on the same batches.

  python -m benchmarks.official_speed --official_dir=/tmp/official \
      [--official_python=python] [--settings=hgr:64,hgr:128,vsepp:128] \
      [--batches=6] [--rounds=4] [--steps=2] [--out=official_speed.json] \
      [--gru_matmul_dtypes=float32,bfloat16]

--official_dir holds a checkout of cshizhe/hgr_v2t (`git archive` of
13d2d74, with `np.bool` -> `bool` in t2vretrieval/readers/rolegraphs.py);
--official_python is a Python with torch (the official code needs nothing
else). Neither is part of this project.

Data: the embedded synthetic dataset with 1,024-d frame features (prepared
into $TFDS_DATA_DIR if needed); --batches batches of each setting in the
official reader's order (`pair_order='global'`). Models: the paper's width
1024, 20 frames, 30 words, Adam, no clipping, both sides. Our side runs
once per --gru_matmul_dtypes entry (`config.model.gru_matmul_dtype`: the
operand type of the BiGRU's products); the official code runs float32.

One worker process per (setting, side) builds its model, converts the
batches and warms up (our step compiles once per length bucket it meets).
Then --rounds rounds alternate the sides, the first side rotating,
each running --steps steps of every setting, so machine load falls on both
alike. A step is timed as the training loop runs it, blocked on: ours cuts
the batch to its length bucket, places it and steps; the official one runs
`train_one_batch` (tensors from NumPy, forward, backward, Adam). Reports
the median step of each side and their ratio.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np

from configs import synthetic
from data_pipelines import input_pipeline
from data_pipelines import length_buckets
from hgr_jax import platform
from hgr_jax import sharding
from hgr_jax import train

_OFFICIAL_DIR = flags.DEFINE_string('official_dir', None,
                                    'Checkout of cshizhe/hgr_v2t.')
_OFFICIAL_PYTHON = flags.DEFINE_string(
    'official_python', sys.executable, 'A Python with torch installed.')
_SETTINGS = flags.DEFINE_list('settings', ['hgr:64', 'hgr:128', 'vsepp:128'],
                              'model:batch pairs to time.')
_BATCHES = flags.DEFINE_integer('batches', 6, 'Batches per setting.')
_ROUNDS = flags.DEFINE_integer('rounds', 4, 'Alternating rounds.')
_STEPS = flags.DEFINE_integer('steps', 2, 'Steps per side and round.')
_THREADS = flags.DEFINE_integer('threads', 0,
                                'Torch threads; 0: the machine\'s cores.')
_OUT = flags.DEFINE_string('out', 'official_speed.json', 'JSON output.')
_WORKER = flags.DEFINE_string('worker', None,
                              'Internal: run our side of model:batch.')
_BATCH_FILE = flags.DEFINE_string('batch_file', None, 'Internal.')
_GRU_MATMUL_DTYPES = flags.DEFINE_list(
    'gru_matmul_dtypes', ['float32', 'bfloat16'],
    'Our side once per entry: operand type of the BiGRU products.')
_GRU_MATMUL_DTYPE = flags.DEFINE_string('gru_matmul_dtype', 'float32',
                                        'Internal: our worker\'s type.')


def benchmark_config(model, batch_size, gru_matmul_dtype='float32'):
  """The synthetic config at the paper's sizes (configs/release.py)."""
  config = synthetic.get_config(model)
  config.model.gru_matmul_dtype = gru_matmul_dtype
  config.synthetic.feature_dim = 1024  # I3D's size, as VATEX.
  config.model.hidden_size = 1024
  config.batch_size = batch_size
  config.learning_rate = 1e-4
  config.grad_clip_norm = float('inf')
  config.pair_order = 'global'
  return config


def write_batches(model, batch_size, count, path):
  """Saves `count` training batches, stacked, to `path` (.npz); returns
  the vocabulary size."""
  config = benchmark_config(model, batch_size)
  builder = input_pipeline.prepare(input_pipeline.get_builder(config))
  batches = input_pipeline.epoch_batches(builder, config, batch_size)(0)
  chosen = [next(batches) for _ in range(count)]
  np.savez(path, **{k: np.stack([b[k] for b in chosen]) for k in chosen[0]})
  return max(input_pipeline.vocabulary(builder).values()) + 1


def run_ours(setting, path, gru_matmul_dtype):
  """Our worker: as `official_step.main`, with the training loop's step."""
  model_name, batch_size = setting.split(':')
  config = benchmark_config(model_name, int(batch_size), gru_matmul_dtype)
  _, model, mesh = train.setup(config)
  stacked = np.load(path)
  batches = [{k: v[i] for k, v in stacked.items()}
             for i in range(len(stacked['length']))]
  state = train.create_train_state(model, config, batches[0], mesh)
  step_fn = train.compile_train_step(model, mesh, state)
  buckets = train.word_buckets(config)

  def step(state, batch):
    batch = length_buckets.trim_to_bucket(batch, buckets)
    state, metrics = step_fn(state, sharding.global_batch(batch, mesh))
    jax.block_until_ready(metrics)
    return state

  for batch in batches:  # Compiles every bucket these batches use.
    state = step(state, batch)
  print('ready', flush=True)
  index = 0
  for line in sys.stdin:
    seconds = []
    for _ in range(int(line)):
      start = time.perf_counter()
      state = step(state, batches[index % len(batches)])
      seconds.append(time.perf_counter() - start)
      index += 1
    print(json.dumps(seconds), flush=True)


class Worker:
  """A worker process answering 'STEPS' lines with a JSON list of seconds."""

  def __init__(self, command, env=None):
    self.process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True,
                                    env=env)
    self.command = command

  def wait_ready(self):
    for line in self.process.stdout:
      if line.strip() == 'ready':
        return
    raise RuntimeError(f'Worker failed before warming up: {self.command}')

  def run(self, steps):
    self.process.stdin.write(f'{steps}\n')
    self.process.stdin.flush()
    return json.loads(self.process.stdout.readline())

  def close(self):
    self.process.stdin.close()
    self.process.wait()


def start_workers(setting, batch_file, vocab_size):
  """The official worker and ours (one per GRU product type) of a setting,
  by side name."""
  model = setting.split(':')[0]
  env = dict(os.environ, PYTHONPATH=os.path.abspath(_OFFICIAL_DIR.value))
  threads = _THREADS.value or os.cpu_count()
  here = os.path.dirname(os.path.abspath(__file__))
  workers = {'official': Worker([
      _OFFICIAL_PYTHON.value, os.path.join(here, 'official_step.py'),
      f'--model={model}', f'--batches={batch_file}',
      f'--vocab_size={vocab_size}', f'--threads={threads}'], env=env)}
  for dtype in _GRU_MATMUL_DTYPES.value:
    workers[f'ours {dtype}'] = Worker([
        sys.executable, '-m', 'benchmarks.official_speed',
        f'--worker={setting}', f'--batch_file={batch_file}',
        f'--gru_matmul_dtype={dtype}'])
  return workers


def main(argv):
  del argv
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  if _WORKER.value:
    run_ours(_WORKER.value, _BATCH_FILE.value, _GRU_MATMUL_DTYPE.value)
    return
  if not _OFFICIAL_DIR.value or not os.path.isdir(os.path.join(
      _OFFICIAL_DIR.value, 't2vretrieval')):
    raise app.UsageError(
        f'--official_dir={_OFFICIAL_DIR.value}: not a checkout of '
        'cshizhe/hgr_v2t (no t2vretrieval/ folder); see this module\'s '
        'docstring.')
  scratch = tempfile.mkdtemp(prefix='official_speed_')
  workers = {}
  for setting in _SETTINGS.value:
    model, batch_size = setting.split(':')
    path = os.path.join(scratch, f'{model}_{batch_size}.npz')
    vocab_size = write_batches(model, int(batch_size), _BATCHES.value, path)
    workers[setting] = start_workers(setting, path, vocab_size)
    for worker in workers[setting].values():
      worker.wait_ready()
  sides = ['official'] + [f'ours {dtype}' for dtype in _GRU_MATMUL_DTYPES.value]
  seconds = {setting: {side: [] for side in sides}
             for setting in _SETTINGS.value}
  for round_index in range(_ROUNDS.value):
    first = round_index % len(sides)
    for setting in _SETTINGS.value:
      for side in sides[first:] + sides[:first]:
        seconds[setting][side] += workers[setting][side].run(_STEPS.value)
    print(f'round {round_index + 1} of {_ROUNDS.value} done', flush=True)
  for pair in workers.values():
    for worker in pair.values():
      worker.close()

  print(f'Median train step (s), {_ROUNDS.value} x {_STEPS.value} steps per '
        f'side, alternating; {os.cpu_count()} cores, load average '
        f'{os.getloadavg()[0]:.1f}')
  ours_sides = sides[1:]
  print('| step | official | ' + ' | '.join(ours_sides) + ' | ' +
        ' | '.join(f'{side} / official' for side in ours_sides) + ' |')
  print('|---' * (2 + 2 * len(ours_sides)) + '|')
  rows = []
  for setting in _SETTINGS.value:
    medians = {side: statistics.median(seconds[setting][side])
               for side in sides}
    official = medians['official']
    model, batch_size = setting.split(':')
    name = {'hgr': 'HGR', 'vsepp': 'VSE++'}[model]
    print(f'| {name}, batch {batch_size} | {official:.2f} s | ' +
          ' | '.join(f'{medians[side]:.2f} s' for side in ours_sides) +
          ' | ' + ' | '.join(f'{medians[side] / official:.2f}'
                             for side in ours_sides) + ' |')
    rows.append(dict(setting=setting, median_s=medians,
                     ratio={side: medians[side] / official
                            for side in ours_sides},
                     seconds=seconds[setting]))
  with open(_OUT.value, 'w') as f:
    json.dump(rows, f, indent=2)


if __name__ == '__main__':
  app.run(main)
