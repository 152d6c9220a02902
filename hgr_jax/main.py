"""Command line: train and test, or test an existing workdir.

  python -m hgr_jax.main --config=configs/synthetic.py --workdir=/tmp/hgr
  python -m hgr_jax.main --config=configs/synthetic.py:vsepp --workdir=/tmp/vsepp
  python -m hgr_jax.main --config=configs/synthetic.py --workdir=/tmp/hgr --mode=eval
  python -m hgr_jax.main --config=configs/synthetic.py --config.batch_size=32 ...

Several processes (one per host), e.g. two on a GPU cluster:

  python -m hgr_jax.main ... --coordinator_address=host0:1234 \
      --num_processes=2 --process_id=0    # on host0; --process_id=1 on host1
  python -m hgr_jax.main ... --multi_process   # SLURM, Open MPI, Kubernetes:
                                               # read from the environment
"""

import logging as logging_std
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from data_pipelines import example_format
from data_pipelines import release_layout
from hgr_jax import binary_selection
from hgr_jax import metrics
from hgr_jax import platform
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
flags.DEFINE_bool(
    'multi_process', False,
    'Start JAX\'s multi-process runtime (jax.distributed.initialize); the '
    'flags below left unset are read from the cluster environment (SLURM, '
    'Open MPI, Kubernetes, Cloud TPU). Implied by --coordinator_address or '
    '$JAX_COORDINATOR_ADDRESS. Not needed on a Cloud TPU pod slice.')
flags.DEFINE_string('coordinator_address', None,
                    'host:port of process 0, reachable from every process.')
flags.DEFINE_integer('num_processes', None, 'Number of processes (hosts).')
flags.DEFINE_integer('process_id', None, 'This process\'s index, from 0.')
flags.mark_flags_as_required(['config', 'workdir'])


def initialize_distributed():
  """Starts JAX's multi-process runtime when the flags ask for it; must run
  before anything touches a JAX device."""
  if not (FLAGS.multi_process or FLAGS.coordinator_address or
          os.environ.get('JAX_COORDINATOR_ADDRESS')):
    return
  jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                             num_processes=FLAGS.num_processes,
                             process_id=FLAGS.process_id)
  logging.info('Process %d of %d.', jax.process_index(), jax.process_count())


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
  logging.info(platform.configure_xla_cpu())
  initialize_distributed()
  logging.info('JAX devices: %s', jax.devices())
  try:
    if FLAGS.mode == 'train':
      results = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    else:
      results = train.evaluate_workdir(FLAGS.config, FLAGS.workdir)
  except train.Preempted as e:
    # A clean stop: the checkpoint is written, rerunning resumes.
    print(e, file=sys.stderr)
    return
  except (FileNotFoundError, NotImplementedError, release_layout.ReleaseError,
          example_format.FeatureError, train.NonFiniteLossError,
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
