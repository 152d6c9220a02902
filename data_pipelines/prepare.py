r"""Writes a config's dataset as TFRecords and prints a summary per split.

  python -m data_pipelines.prepare --config=configs/vatex.py \
      --config.release_dir=/data/VATEX --config.data_dir=/data/tfds

Training prepares the data itself when needed; this command does it alone,
e.g. once on a CPU machine before training on accelerators.
"""

from absl import app
from absl import flags
from ml_collections import config_flags
import tensorflow as tf

from data_pipelines import input_pipeline
from data_pipelines import release_layout

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    'config', None, 'Experiment config, e.g. configs/vatex.py.',
    lock_config=True)
flags.mark_flags_as_required(['config'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  tf.config.set_visible_devices([], 'GPU')
  config = FLAGS.config
  try:
    builder = input_pipeline.prepare(input_pipeline.get_builder(config),
                                     manual_dir=config.get('release_dir'))
  except release_layout.ReleaseError as e:
    raise SystemExit(f'Error: {e}') from e
  print(f'{config.dataset} prepared in {builder.data_dir}:')
  for split, info in builder.info.splits.items():
    print(f'  {split}: {info.num_examples} videos')
  for split in release_layout.SPLITS:
    summary = builder.info.metadata.get(f'{split}_summary')
    if summary:
      print('  ' + release_layout.SplitSummary(**summary).describe(split))


if __name__ == '__main__':
  app.run(main)
