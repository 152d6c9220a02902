"""The import contracts of .importlinter hold (import-linter's lint-imports):
data_pipelines stands alone, and only benchmarks and tests import benchmark
code."""

import os
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_contracts_are_kept():
  command = shutil.which('lint-imports')
  assert command, 'import-linter is not installed (pip install -e .[test])'
  result = subprocess.run([command], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=REPO))
  assert 'Contracts: 2 kept, 0 broken.' in result.stdout, (
      result.stdout[-3000:] + result.stderr[-1000:])
