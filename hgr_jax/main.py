"""Command line: train and test, or test an existing workdir.

  python -m hgr_jax.main --config=configs/synthetic.py --workdir=/tmp/hgr
  python -m hgr_jax.main --config=configs/synthetic.py:vsepp --workdir=/tmp/vsepp
  python -m hgr_jax.main --config=configs/synthetic.py --workdir=/tmp/hgr --mode=eval
  python -m hgr_jax.main --config=configs/synthetic.py --config.batch_size=32 ...
"""

import logging as logging_std
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from data_pipelines import release_layout
from hgr_jax import binary_selection
from hgr_jax import metrics
from hgr_jax import train
from hgr_jax import word_embeddings

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, e.g. configs/synthetic.py.',
    lock_config=True)
flags.DEFINE_string('workdir', None, 'Where checkpoints, logs and metrics go.')
flags.DEFINE_enum('mode', 'train', ['train', 'eval'],
                  'train: train (resuming if the workdir has a checkpoint) '
                  'then test the best checkpoint; eval: only test it.')
flags.mark_flags_as_required(['config', 'workdir'])


class _HideLibraryChatter(logging_std.Filter):
  """Drops orbax's and tfds's per-operation INFO lines; keeps their warnings."""

  def filter(self, record):
    chatty = any(f'/{lib}/' in record.pathname
                 for lib in ('orbax', 'tensorflow_datasets'))
    return record.levelno >= logging_std.WARNING or not chatty


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_HideLibraryChatter())
  logging.info('JAX devices: %s', jax.devices())
  try:
    if FLAGS.mode == 'train':
      results = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    else:
      results = train.evaluate_workdir(FLAGS.config, FLAGS.workdir)
  except (FileNotFoundError, NotImplementedError, release_layout.ReleaseError,
          word_embeddings.EmbeddingFileError) as e:
    # Missing data or checkpoints: the message says what to do, no traceback.
    sys.exit(f'Error: {e}')
  print(f'Test metrics ({FLAGS.workdir}/{train.TEST_METRICS_FILE}):')
  print(metrics.format_table({FLAGS.config.model_name: results}))
  if FLAGS.config.binary_selection:
    print('Binary selection accuracy (%), true caption vs its twin:')
    print(binary_selection.format_table({FLAGS.config.model_name: results}))


if __name__ == '__main__':
  app.run(main)
