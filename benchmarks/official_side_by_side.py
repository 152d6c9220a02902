r"""Learning curves of our HGR (or VSE++) on a release, next to the official run.

  python -m benchmarks.official_side_by_side --release_dir=/tmp/release \
      --workdir=/tmp/side_by_side --num_epochs=5 [--hidden_size=1024] \
      [--variants=official,previous_switches] [--model=hgr] \
      [--official_log_dir=.../log]

Trains configs/vatex.py (the paper's settings, width 1024) on the release
once per variant, each in WORKDIR/<model>_<variant>, and prints validation
rsum after every epoch and the test rsum of the best epoch. Variants:
  official            the release configs' defaults (the official recipe)
  previous_switches   gradient clipping at 2, 'video_buffer' pair order and
                      same-video negatives masked (the defaults before the
                      official recipe; initialisers stay PyTorch's)
  clip, video_buffer, mask_same_video
                      one of those three on top of 'official'
With --official_log_dir (the official code's output_dir/log, which holds
val.epoch.<epoch>.step.<step>.json), the official run's curve is printed
alongside. Writes WORKDIR/<model>_side_by_side.json.
"""

import glob
import json
import os
import re

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from configs import vatex
from hgr_jax import platform
from hgr_jax import train

VARIANTS = {
    'official': {},
    'previous_switches': dict(grad_clip_norm=2.0, pair_order='video_buffer',
                              mask_same_video_negatives=True),
    'clip': dict(grad_clip_norm=2.0),
    'video_buffer': dict(pair_order='video_buffer'),
    'mask_same_video': dict(mask_same_video_negatives=True),
}

_RELEASE_DIR = flags.DEFINE_string('release_dir', None, 'Release root.',
                                   required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Root of the runs.',
                               required=True)
_DATA_DIR = flags.DEFINE_string('data_dir', None,
                                'Where the prepared TFRecords go.')
_NUM_EPOCHS = flags.DEFINE_integer('num_epochs', 5, 'Epochs of every run.')
_HIDDEN_SIZE = flags.DEFINE_integer('hidden_size', 1024,
                                    'Width (the paper: 1024).')
_MODEL = flags.DEFINE_enum('model', 'hgr', ['hgr', 'vsepp'], 'Model.')
_VARIANTS = flags.DEFINE_list('variants', ['official', 'previous_switches'],
                              f'Among {sorted(VARIANTS)}.')
_FEATURE_NAMES = flags.DEFINE_list('feature_names', ['features'],
                                   'ordered_feature/SA/ folders.')
_OFFICIAL_LOG_DIR = flags.DEFINE_string(
    'official_log_dir', None, "The official run's log folder.")


def validation_curve(workdir):
  """Validation rsum after each epoch, from the run's summaries (by step)."""
  by_step = {}
  for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == 'val_rsum':
          by_step[event.step] = float(tf.make_ndarray(value.tensor))
  return [by_step[step] for step in sorted(by_step)]


def official_curve(log_dir):
  """rsum of the official run's val.epoch.<epoch>.step.<step>.json files."""
  by_epoch = {}
  for path in glob.glob(os.path.join(log_dir, 'val.epoch.*.json')):
    epoch = int(re.match(r'val\.epoch\.(\d+)\.', os.path.basename(path))[1])
    with open(path) as f:
      by_epoch[epoch] = json.load(f)['rsum']
  return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def run_variant(variant):
  """Trains one variant; returns its validation curve and test rsum."""
  if variant not in VARIANTS:
    raise ValueError(f'--variants: unknown {variant!r}; use some of '
                     f'{sorted(VARIANTS)}.')
  config = vatex.get_config(_MODEL.value)
  overrides = dict(VARIANTS[variant])
  config.model.hidden_size = _HIDDEN_SIZE.value
  config.model.mask_same_video_negatives = overrides.pop(
      'mask_same_video_negatives', False)
  config.update(dict(release_dir=_RELEASE_DIR.value,
                     data_dir=_DATA_DIR.value,
                     feature_names=tuple(_FEATURE_NAMES.value),
                     num_epochs=_NUM_EPOCHS.value, binary_selection=False,
                     **overrides))
  workdir = os.path.join(_WORKDIR.value, f'{_MODEL.value}_{variant}')
  test = train.train_and_evaluate(config, workdir)
  return {'validation_rsum': validation_curve(workdir),
          'test_rsum': test['rsum']}


def format_curves(curves):
  """Markdown table: one row per run, validation rsum per epoch, test."""
  epochs = max(len(c['validation_rsum']) for c in curves.values())
  lines = ['| run | ' + ' | '.join(f'val ep {e + 1}' for e in range(epochs))
           + ' | test rsum |',
           '|---|' + '---|' * (epochs + 1)]
  for name, curve in curves.items():
    cells = [f'{v:.1f}' for v in curve['validation_rsum']]
    cells += [''] * (epochs - len(cells))
    test = curve.get('test_rsum')
    lines.append(f'| {name} | ' + ' | '.join(cells) +
                 f" | {'' if test is None else f'{test:.1f}'} |")
  return '\n'.join(lines)


def main(argv):
  del argv
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  curves = {}
  if _OFFICIAL_LOG_DIR.value:
    # The official code validates once before training: epoch 0 is after
    # the first epoch, as ours.
    curves['official code'] = {
        'validation_rsum': official_curve(_OFFICIAL_LOG_DIR.value)}
  for variant in _VARIANTS.value:
    curves[f'ours, {variant}'] = run_variant(variant)
  print(format_curves(curves))
  best = {n: float(np.max(c['validation_rsum'])) for n, c in curves.items()
          if c['validation_rsum']}
  print('best validation rsum: ' + ', '.join(
      f'{n} {v:.1f}' for n, v in best.items()))
  os.makedirs(_WORKDIR.value, exist_ok=True)
  with open(os.path.join(_WORKDIR.value,
                         f'{_MODEL.value}_side_by_side.json'), 'w') as f:
    json.dump(curves, f, indent=2)


if __name__ == '__main__':
  app.run(main)
