"""benchmarks.accelerator end to end at tiny sizes, so that it cannot rot."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import accelerator


def test_tiny_run_writes_both_tables(tmp_path):
  out = tmp_path / 'accelerator.json'
  result = subprocess.run(
      [sys.executable, '-m', 'benchmarks.accelerator', '--models=vsepp',
       '--dtypes=bfloat16', '--width=16', '--word_dim=16', '--feature_dim=16', '--batch_size=8',
       '--train_videos=48', '--steps=2', '--eval_videos=20',
       '--eval_captions=50', f'--data_dir={tmp_path / "tfds"}',
       f'--out={out}'],
      capture_output=True, text=True, timeout=900,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(out.read_text())
  rows = report['train_step']
  assert {(r['dtype'], r['implementation']) for r in rows} == {
      ('bfloat16', 'plain'), ('bfloat16', 'packed')}
  for row in rows:
    assert row['step_s'] > 0 and row['flops'] > 0 and row['memory_bytes'] > 0
    assert row['pairs_per_s'] == pytest.approx(8 / row['step_s'])
    assert row['peak_fraction'] is None  # No known peak for a CPU.
  floor = 2 * 20 * 50 * 20 * 16 * (4 + 6)  # frames 20, 4 verbs, 6 nouns.
  assert [r['dtype'] for r in report['evaluation']] == ['float32', 'bfloat16']
  for row in report['evaluation']:
    assert row['floor_flops'] == floor and row['seconds'] > 0
  assert 'TFLOP/s' in result.stdout and 'vsepp' in result.stdout


@pytest.mark.parametrize('kind, dtype, peak', [
    ('NVIDIA H100 80GB HBM3', 'bfloat16', 989e12),
    ('NVIDIA H100 PCIe', 'bfloat16', 756e12),
    ('NVIDIA A100-SXM4-40GB', 'float32', 156e12),
    ('TPU v5 lite', 'bfloat16', 197e12),
    ('TPU v4', 'float32', None),
    ('cpu', 'bfloat16', None),
])
def test_peak_flops_by_device_kind(kind, dtype, peak):
  assert accelerator.peak_flops(kind, dtype) == peak
