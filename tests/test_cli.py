"""`python -m hgr_jax.main` end to end on a tiny config."""

import json
import os
import subprocess
import sys
from unittest import mock

from absl import flags

from hgr_jax import metrics

_TINY = ['--config.synthetic.feature_dim=32',
         '--config.synthetic.num_train_videos=48',
         '--config.synthetic.num_validation_videos=16',
         '--config.synthetic.num_test_videos=16',
         '--config.model.word_dim=16',
         '--config.model.hidden_size=32',
         '--config.batch_size=8', '--config.num_epochs=1',
         '--config.eval_batch_size=16']


def _main(*args, devices=1):
  """Runs the command line on `devices` forced CPU devices."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') +
                      f' --xla_force_host_platform_device_count={devices}')
  return subprocess.run([sys.executable, '-m', 'hgr_jax.main', *args],
                        capture_output=True, text=True, timeout=600, env=env)


def _exit_message(*args):
  """hgr_jax.main's exit message for `args`, run in this process: the error
  tests' subject is the message, not a new process (~9 s of imports)."""
  # Collecting a benchmark's tests imports the benchmark, whose --config and
  # --workdir sit on the same global FLAGS that hgr_jax.main defines them on.
  for module, module_flags in list(flags.FLAGS.flags_by_module_dict().items()):
    if module.startswith('benchmarks.'):
      for flag in list(module_flags):
        if flag.name in flags.FLAGS:
          delattr(flags.FLAGS, flag.name)
  from hgr_jax import main  # pylint: disable=g-import-not-at-top
  argv = ['hgr_jax.main', *args]
  try:
    # ml_collections finds the --config.* overrides in sys.argv.
    with mock.patch.object(sys, 'argv', argv):
      main.main(flags.FLAGS(argv))
  except SystemExit as e:
    return str(e.code)
  finally:
    flags.FLAGS.unparse_flags()
  raise AssertionError(f'hgr_jax.main {args} did not exit')


def test_train_then_eval_on_4_devices(tiny_data_dir, tmp_path):
  """Train, validate and test with binary selection on 4 (forced CPU)
  devices (the batch of 8 packs 2 captions per device), then test the
  checkpoint again on one device."""
  workdir = str(tmp_path / 'run')
  common = ['--config=configs/synthetic.py:vsepp', f'--workdir={workdir}',
            f'--config.data_dir={tiny_data_dir}', *_TINY]
  trained = _main(*common, devices=4)
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert '4 devices' in trained.stderr
  assert 'Test metrics' in trained.stdout and 'vsepp' in trained.stdout
  assert 'Binary selection' in trained.stdout
  with open(os.path.join(workdir, 'test_metrics.json')) as f:
    written = json.load(f)
  assert set(metrics.METRIC_NAMES) <= set(written)
  assert 0 <= written['t2v_r1'] <= written['t2v_r5'] <= written['t2v_r10'] <= 100

  # The same checkpoint tested on one device scores as on four.
  evaluated = _main(*common, '--mode=eval', devices=1)
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  with open(os.path.join(workdir, 'test_metrics.json')) as f:
    one_device = json.load(f)
  assert one_device['checkpoint_step'] == written['checkpoint_step']
  for name, value in written.items():
    if name.endswith(('rsum', 'r1', 'r5', 'r10')) or name.startswith(
        'binary_'):
      assert abs(one_device[name] - value) <= 1.0, (name, value,
                                                    one_device[name])


def test_eval_without_checkpoint_says_what_to_do(tiny_data_dir, tmp_path):
  message = _exit_message('--config=configs/synthetic.py',
                          f'--workdir={tmp_path}',
                          f'--config.data_dir={tiny_data_dir}', *_TINY,
                          '--mode=eval')
  assert 'No checkpoint' in message and 'train first' in message


def test_real_dataset_config_asks_for_the_release(tmp_path):
  message = _exit_message('--config=configs/vatex.py', f'--workdir={tmp_path}')
  assert '--config.release_dir' in message
  assert 'annotation/, public_split/ and ordered_feature/' in message
  assert 'configs/synthetic.py' in message


def test_vatex_config_trains_on_a_release_layout(tmp_path):
  """Synthetic data -> release layout -> configs/vatex.py, all from the CLI."""
  synthetic = ['--config=configs/synthetic.py',
               f'--config.data_dir={tmp_path / "synthetic_tfds"}',
               '--config.synthetic.feature_dim=32',
               '--config.synthetic.num_train_videos=64',
               '--config.synthetic.num_validation_videos=16',
               '--config.synthetic.num_test_videos=16']
  release = str(tmp_path / 'VATEX')
  exported = subprocess.run(
      [sys.executable, '-m', 'data_pipelines.export_release', *synthetic,
       f'--out={release}', '--feature_name=i3d'],
      capture_output=True, text=True, timeout=600)
  assert exported.returncode == 0, exported.stderr[-3000:]

  with open(os.path.join(release, 'annotation', 'RET', 'word2int.json')) as f:
    words = sorted(json.load(f))[:10]
  glove = tmp_path / 'glove.16d.txt'
  glove.write_text(''.join(f'{w} ' + ' '.join(['0.5'] * 16) + '\n'
                           for w in words + ['absent-word']))

  workdir = str(tmp_path / 'run')
  trained = _main('--config=configs/vatex.py', f'--workdir={workdir}',
                  f'--config.release_dir={release}',
                  f'--config.data_dir={tmp_path / "tfds"}',
                  f'--config.word_embeddings_file={glove}',
                  '--config.model.word_dim=16',
                  '--config.model.hidden_size=32',
                  '--config.batch_size=32', '--config.num_epochs=1',
                  '--config.eval_batch_size=16')
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert 'train: 64 videos' in trained.stderr
  assert '10 of ' in trained.stderr and 'found in' in trained.stderr
  with open(os.path.join(workdir, 'test_metrics.json')) as f:
    assert set(metrics.METRIC_NAMES) <= set(json.load(f))
