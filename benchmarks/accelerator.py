r"""Train step and evaluation speed on whatever backend JAX runs on.

  python -m benchmarks.accelerator [--models=hgr,vsepp,hanet,hcmi]
      [--width=1024] [--batch_size=128] [--dtypes=float32,bfloat16]
      [--implementations=plain,packed] [--eval_videos=1500]
      [--eval_captions=15000] [--out=accelerator.json]

Train step: each model of --models on the synthetic dataset (prepared in
--data_dir or $TFDS_DATA_DIR; --feature_dim-d frames), at width --width and
batch --batch_size, once per BiGRU product type (--dtypes) and
implementation (--implementations: 'plain', one scan for GPU and TPU;
'packed', the XLA:CPU one). Per row: the median of --steps blocked steps,
caption-video pairs per second, the step's memory (XLA's account of its
arguments, outputs and temporaries; the JSON also has the device's peak in
use so far, where the device keeps statistics), XLA's FLOPs per step and
the FLOP/s achieved against the device's peak, where known.

Evaluation: HGR (random weights) scores --eval_videos x --eval_captions
(VATEX's test split by default) in the evaluator's tiles, float32 and
bfloat16 products; its FLOP floor is HGR's phrase-to-frame products,
2 x videos x captions x frames x width x (verbs + nouns): 9.2 TFLOP at
VATEX size.

The table goes to stdout and, with the device and settings, to --out.
"""

import json
import statistics
import time

from absl import app
from absl import flags
import jax
import tensorflow_datasets as tfds

from benchmarks import random_batches
from configs import synthetic
from hgr_jax import evaluate
from hgr_jax import models
from hgr_jax import platform
from hgr_jax import sharding
from hgr_jax import train

FLAGS = flags.FLAGS


def _define_flags():
  """The command line's flags (defined when run, so that importing this
  module for its tables defines none)."""
  flags.DEFINE_list('models', ['hgr', 'vsepp', 'hanet', 'hcmi'],
                    'Models whose train step is timed.')
  flags.DEFINE_integer('width', 1024, 'config.model.hidden_size.')
  flags.DEFINE_integer('word_dim', 300, 'config.model.word_dim.')
  flags.DEFINE_integer('feature_dim', 1024, 'Frame features.')
  flags.DEFINE_integer('batch_size', 128, 'Global batch.')
  flags.DEFINE_integer(
      'train_videos', 1000, 'Synthetic training videos (enough for a batch).')
  flags.DEFINE_list('dtypes', ['float32', 'bfloat16'],
                    'BiGRU product types (gru_matmul_dtype).')
  flags.DEFINE_list(
      'implementations', ['plain', 'packed'], 'BiGRU implementations.')
  flags.DEFINE_integer('steps', 5, 'Timed steps per row.')
  flags.DEFINE_integer('eval_videos', 1500, '0: no evaluation.')
  flags.DEFINE_integer('eval_captions', 15_000,
                       'Captions scored against the videos.')
  flags.DEFINE_string('data_dir', None, 'tfds data dir.')
  flags.DEFINE_string('out', 'accelerator.json', 'JSON output path.')


# Dense peak FLOP/s of the products' type, from the vendors' data sheets:
# bfloat16 tensor cores, and TF32 for float32 (XLA's default precision for
# float32 products on these GPUs). Matched against jax's device_kind.
PEAK_FLOPS = {
    'H100 PCIe': {'bfloat16': 756e12, 'float32': 378e12},
    'H100': {'bfloat16': 989e12, 'float32': 495e12},
    'H200': {'bfloat16': 989e12, 'float32': 495e12},
    'A100': {'bfloat16': 312e12, 'float32': 156e12},
    'L4': {'bfloat16': 121e12, 'float32': 60e12},
    'TPU v4': {'bfloat16': 275e12},
    'TPU v5 lite': {'bfloat16': 197e12},
    'TPU v5p': {'bfloat16': 459e12},
    'TPU v6 lite': {'bfloat16': 918e12},
}


def peak_flops(device_kind, dtype):
  """The device's peak FLOP/s for `dtype` products, or None if unknown."""
  for kind, peaks in PEAK_FLOPS.items():  # Longer names listed first.
    if kind in device_kind:
      return peaks.get(dtype)
  return None


def _memory(device, compiled):
  """(XLA's estimate of the compiled program's arguments, outputs and
  temporaries, the device's peak bytes in use so far or None where the
  device keeps no statistics, as on CPU)."""
  analysis = compiled.memory_analysis()
  program = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes +
             analysis.temp_size_in_bytes)
  stats = device.memory_stats() or {}
  return int(program), stats.get('peak_bytes_in_use')


def _flops(compiled):
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get('flops', 0.0))


def _config(model_name, dtype, implementation):
  config = synthetic.get_config(model_name)
  config.data_dir = FLAGS.data_dir
  config.synthetic.feature_dim = FLAGS.feature_dim
  config.synthetic.num_train_videos = FLAGS.train_videos
  config.batch_size = FLAGS.batch_size
  config.model.update(dict(hidden_size=FLAGS.width, word_dim=FLAGS.word_dim,
                           gru_matmul_dtype=dtype,
                           gru_implementation=implementation))
  if model_name == 'hanet':  # Concept counts of the release configs.
    config.model.update(dict(num_verb_concepts=512, num_noun_concepts=1024))
  return config


def time_train_step(model_name, dtype, implementation):
  """One row of the train step table."""
  config = _config(model_name, dtype, implementation)
  builder, model, mesh = train.setup(config)
  batch = next(iter(tfds.as_numpy(train.train_batches(
      builder, model, config, 0, config.batch_size))))
  state = train.create_train_state(model, config, batch, mesh)
  step = train.compile_train_step(model, mesh, state)
  batch = sharding.global_batch(batch, mesh)
  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_seconds = time.perf_counter() - start
  state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  seconds = []
  for _ in range(FLAGS.steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    seconds.append(time.perf_counter() - start)
  step_seconds = statistics.median(seconds)
  flops = _flops(compiled)
  memory, device_peak = _memory(jax.devices()[0], compiled)
  peak = peak_flops(jax.devices()[0].device_kind, dtype)
  return dict(model=model_name, dtype=dtype, implementation=implementation,
              batch_size=config.batch_size, width=config.model.hidden_size,
              step_s=step_seconds, pairs_per_s=config.batch_size / step_seconds,
              compile_s=compile_seconds, memory_bytes=memory,
              device_peak_bytes=device_peak, flops=flops,
              flops_per_s=flops / step_seconds,
              peak_fraction=None if peak is None else
              flops / step_seconds / peak / jax.device_count())


def time_evaluation(bfloat16):
  """One row of the evaluation table: HGR (random weights) scoring
  --eval_videos x --eval_captions."""
  config = _config('hgr', 'float32', 'auto')
  model = models.create_model(config, 10_000)
  batch = random_batches.random_batch(config, 500, config.max_words,
                                          FLAGS.feature_dim, 10_000)
  mesh = sharding.data_mesh(jax.local_devices())
  variables = jax.device_get(train.create_train_state(
      model, config, batch, mesh).variables)
  evaluator = evaluate.Evaluator(model, mesh, 500, bfloat16=bfloat16)
  videos = evaluator.encode_videos(variables, [
      {'frames': batch['frames'], 'frame_mask': batch['frame_mask']}] * (
          -(-FLAGS.eval_videos // 500)))
  captions = evaluator.encode_captions(variables, [batch] * (
      -(-FLAGS.eval_captions // 500)))
  videos = jax.tree.map(lambda x: x[:FLAGS.eval_videos], videos)
  captions = jax.tree.map(lambda x: x[:FLAGS.eval_captions], captions)
  evaluator.score_matrix(variables, videos, captions)  # Compiles.
  start = time.perf_counter()
  evaluator.score_matrix(variables, videos, captions)
  seconds = time.perf_counter() - start
  floor = (2.0 * FLAGS.eval_videos * FLAGS.eval_captions * config.max_frames
           * config.model.hidden_size * (config.num_verbs + config.num_nouns))
  dtype = 'bfloat16' if bfloat16 else 'float32'
  peak = peak_flops(jax.devices()[0].device_kind, dtype)
  return dict(videos=FLAGS.eval_videos, captions=FLAGS.eval_captions,
              dtype=dtype, seconds=seconds, floor_flops=floor,
              floor_flops_per_s=floor / seconds,
              peak_fraction=None if peak is None else
              floor / seconds / peak / len(jax.local_devices()))


def _fraction(value):
  return '-' if value is None else f'{100 * value:.1f}%'


def format_tables(result):
  """The train step and evaluation tables of `result` as text."""
  lines = [f'{result["device"]}; train step at width {FLAGS.width}, '
           f'median of {FLAGS.steps} blocked steps',
           f'{"model":<6} {"GRU":>8} {"impl":>7} {"step s":>8} '
           f'{"pairs/s":>8} {"memory GB":>10} {"TFLOP":>7} {"TFLOP/s":>8} '
           f'{"of peak":>8}']
  for row in result['train_step']:
    lines.append(
        f'{row["model"]:<6} {row["dtype"]:>8} {row["implementation"]:>7} '
        f'{row["step_s"]:>8.3f} {row["pairs_per_s"]:>8.0f} '
        f'{row["memory_bytes"] / 1e9:>10.2f} {row["flops"] / 1e12:>7.3f} '
        f'{row["flops_per_s"] / 1e12:>8.2f} {_fraction(row["peak_fraction"]):>8}')
  if result['evaluation']:
    lines.append('evaluation (HGR, random weights): products, seconds, '
                 'FLOP floor, floor/s')
    for row in result['evaluation']:
      lines.append(
          f'{row["videos"]} x {row["captions"]} {row["dtype"]:>8} '
          f'{row["seconds"]:>8.2f} s {row["floor_flops"] / 1e12:>7.2f} TFLOP '
          f'{row["floor_flops_per_s"] / 1e12:>7.2f} TFLOP/s '
          f'({_fraction(row["peak_fraction"])} of peak)')
  return '\n'.join(lines)


def main(argv):
  del argv
  print(platform.configure_xla_cpu())  # Before JAX starts its CPU backend.
  device = jax.devices()[0]
  result = {
      'device': f'{jax.device_count()} x {device.device_kind} '
                f'({device.platform})',
      'native_bfloat16': platform.native_bfloat16(device)[1],
      'auto_dtype': platform.matmul_dtype('auto'),
      'jax': jax.__version__, 'train_step': [], 'evaluation': []}
  print(f'{result["device"]}; auto GRU products: {result["auto_dtype"]} '
        f'({result["native_bfloat16"]})', flush=True)
  for model_name in FLAGS.models:
    for dtype in FLAGS.dtypes:
      for implementation in FLAGS.implementations:
        row = time_train_step(model_name, dtype, implementation)
        result['train_step'].append(row)
        print(f'{model_name} {dtype} {implementation}: '
              f'{row["step_s"]:.3f} s/step', flush=True)
  if FLAGS.eval_videos:
    for bfloat16 in (False, True):
      result['evaluation'].append(time_evaluation(bfloat16))
  print(format_tables(result))
  with open(FLAGS.out, 'w') as f:
    json.dump(result, f, indent=2)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
