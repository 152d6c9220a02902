"""benchmarks/compare_models: per-seed runs reused, mean and std over seeds."""

import json
import os

import numpy as np
import pytest

from benchmarks import compare_models
from configs import synthetic
from hgr_jax import train


def test_mean_std_over_seeds():
  per_seed = {0: {'rsum': 500.0, 'verb_rsum': 400.0, 'binary_action': 90.0,
                  'checkpoint_step': 10},
              1: {'rsum': 520.0, 'verb_rsum': 410.0, 'binary_action': 94.0,
                  'checkpoint_step': 20},
              2: {'rsum': 540.0, 'binary_action': 98.0,
                  'checkpoint_step': 30}}
  mean, std = compare_models.mean_std(per_seed)
  assert mean == {'rsum': 520.0, 'binary_action': 94.0,
                  'checkpoint_step': 20.0}
  np.testing.assert_allclose(std['rsum'], np.std([500, 520, 540], ddof=1))
  assert std['rsum'] == 20.0
  _, one = compare_models.mean_std({0: per_seed[0]})
  assert one['rsum'] == 0.0


def test_table_rows_are_rsums_and_binary_accuracies():
  summary = {'hgr': dict(seeds={0: {}, 1: {}}, mean={
      'rsum': 520.0, 'verb_rsum': 400.0, 'binary_role_swap': 90.0,
      'binary_role_swap_pairs': 100, 't2v_r1': 50.0}, std={
          'rsum': 20.0, 'verb_rsum': 1.5, 'binary_role_swap': 2.0,
          'binary_role_swap_pairs': 0.0, 't2v_r1': 1.0})}
  lines = compare_models.format_table(summary).splitlines()
  assert [line.split()[0] for line in lines[2:]] == [
      'rsum', 'verb_rsum', 'binary_role_swap']
  assert lines[2].split()[1:] == ['520.0', '±', '20.0']
  assert lines[1].split() == ['seeds', '2']


def test_finished_run_is_reused(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'hgr' / 'seed_0')
  os.makedirs(workdir)
  with open(os.path.join(workdir, train.TEST_METRICS_FILE), 'w') as f:
    json.dump({'rsum': 123.0}, f)
  def fail(*args):
    raise AssertionError(f'trained again: {args}')
  monkeypatch.setattr(train, 'train_and_evaluate', fail)
  assert compare_models.run(synthetic.get_config('hgr'), workdir) == (
      {'rsum': 123.0}, None)


def test_unfinished_run_is_trained(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'hgr' / 'seed_1')
  def fake_train(config, path):
    assert config.seed == 1 and path == workdir
    os.makedirs(path)
    with open(os.path.join(path, train.TEST_METRICS_FILE), 'w') as f:
      json.dump({'rsum': 7.0}, f)
  monkeypatch.setattr(train, 'train_and_evaluate', fake_train)
  config = synthetic.get_config('hgr')
  config.seed = 1
  metrics, wall = compare_models.run(config, workdir)
  assert metrics == {'rsum': 7.0} and wall >= 0.0


def test_overrides_apply_where_the_field_exists():
  module = compare_models.load_config_module('configs/synthetic.py')
  overrides = {'num_epochs': 1, 'model.hidden_size': 32,
               'model.num_verb_concepts': 8}
  hgr = compare_models.model_config(module, 'hgr', overrides)
  hanet = compare_models.model_config(module, 'hanet', overrides)
  assert hgr.num_epochs == hanet.num_epochs == 1
  assert hgr.model.hidden_size == hanet.model.hidden_size == 32
  assert hanet.model.num_verb_concepts == 8
  assert 'num_verb_concepts' not in hgr.model


def test_missing_config_file_is_named():
  with pytest.raises(FileNotFoundError, match='--config=configs/nope.py'):
    compare_models.load_config_module('configs/nope.py')


def test_markdown_tables():
  two_seeds = {0: {}, 1: {}}
  hgr_mean = {'rsum': 500.0, 'verb_rsum': 400.0, 'binary_role_swap': 90.0,
              **{k: 10.0 for k in ('t2v_r1', 't2v_r5', 't2v_r10',
                                   't2v_medr', 'v2t_r1', 'v2t_r5',
                                   'v2t_r10', 'v2t_medr')}}
  summary = {
      'hgr': dict(seeds=two_seeds, mean=hgr_mean,
                  std={'rsum': 4.0, 'verb_rsum': 2.5,
                       'binary_role_swap': 1.0}),
      'hcmi': dict(seeds={0: {}}, mean={'rsum': 300.0, 'binary_role_swap':
                                        60.0, 'frame_word_rsum': 310.0},
                   std={'rsum': 0.0, 'binary_role_swap': 0.0,
                        'frame_word_rsum': 0.0}),
      'hcmi_no_ald': dict(seeds={0: {}}, mean={
          'rsum': 280.0, 'binary_role_swap': 55.0, 'frame_word_rsum': 290.0},
                          std={}),
  }
  lines = compare_models.markdown_tables(
      summary, ablations=compare_models.HCMI_ABLATIONS).splitlines()
  hgr_row = lines[2].split(' | ')
  assert hgr_row[0] == '| hgr' and hgr_row[1] == '2'
  assert hgr_row[10] == '**500.0 ± 4.0**'
  assert hgr_row[11] == 'verb 400.0 ± 2.5 |'
  # One seed: no std; a missing key: '-'.
  assert lines[3].split(' | ')[2] == '-'
  assert '| hgr | 90.0 ± 1.0 |' in lines
  assert '| hcmi | 60.0 |' in lines
  # The ablation table: HCMI first, then its ablations, never in the
  # main table.
  assert lines[-2:] == ['| hcmi | 1 | 300.0 | 310.0 | 60.0 |',
                        '| hcmi_no_ald | 1 | 280.0 | 290.0 | 55.0 |']
  assert sum('hcmi_no_ald' in line for line in lines) == 1
