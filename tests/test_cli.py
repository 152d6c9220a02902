"""`python -m hgr_jax.main` end to end on a tiny config."""

import json
import os
import subprocess
import sys

from hgr_jax import metrics

_TINY = ['--config.synthetic.feature_dim=32',
         '--config.synthetic.num_train_videos=48',
         '--config.synthetic.num_validation_videos=16',
         '--config.synthetic.num_test_videos=16',
         '--config.word_dim=16', '--config.hidden_size=32',
         '--config.batch_size=8', '--config.num_epochs=1',
         '--config.eval_batch_size=16']


def _main(*args):
  return subprocess.run([sys.executable, '-m', 'hgr_jax.main', *args],
                        capture_output=True, text=True, timeout=600)


def test_train_then_eval(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  common = ['--config=configs/synthetic.py:vsepp', f'--workdir={workdir}',
            f'--config.data_dir={tiny_data_dir}', *_TINY]
  trained = _main(*common)
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert 'Test metrics' in trained.stdout and 'vsepp' in trained.stdout
  with open(os.path.join(workdir, 'test_metrics.json')) as f:
    written = json.load(f)
  assert set(metrics.METRIC_NAMES) <= set(written)
  assert 0 <= written['t2v_r1'] <= written['t2v_r5'] <= written['t2v_r10'] <= 100

  evaluated = _main(*common, '--mode=eval')
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  with open(os.path.join(workdir, 'test_metrics.json')) as f:
    assert json.load(f) == written


def test_eval_without_checkpoint_says_what_to_do(tiny_data_dir, tmp_path):
  result = _main('--config=configs/synthetic.py', f'--workdir={tmp_path}',
                 f'--config.data_dir={tiny_data_dir}', *_TINY, '--mode=eval')
  assert result.returncode != 0
  assert 'No checkpoint' in result.stderr and 'train first' in result.stderr


def test_real_dataset_config_names_the_data_it_needs(tmp_path):
  result = _main('--config=configs/vatex.py', f'--workdir={tmp_path}')
  assert result.returncode != 0
  assert 'annotation/RET/ref_captions.json' in result.stderr
  assert 'configs/synthetic.py' in result.stderr
