"""The Colab notebooks run headless in SMOKE mode and are committed clean.

Regenerate the README's figure with the same run:
  HGR_COLAB_FIGURES=docs/figures python -m pytest -q tests/test_colabs.py
"""

import os
import pathlib

import matplotlib.image
import nbclient
import nbformat
import numpy as np
import pytest

COLABS = pathlib.Path(__file__).resolve().parents[1] / 'colabs'
# The PNGs each notebook must save under HGR_COLAB_FIGURES.
FIGURES = {
    'quickstart.ipynb': ('quickstart_training.png', 'quickstart_recall.png',
                         'quickstart_binary_selection.png',
                         'quickstart_attention.png'),
    'real_data.ipynb': ('real_data_validation.png',),
}
# A figure with data: text, lines, bars and colour maps anti-aliased into
# hundreds of colours; an empty canvas or one flat colour has a handful.
_MIN_COLOURS = 100


def _read(name):
  return nbformat.read(COLABS / name, as_version=nbformat.NO_CONVERT)


def test_every_notebook_is_checked():
  assert sorted(p.name for p in COLABS.glob('*.ipynb')) == sorted(FIGURES)


@pytest.fixture(scope='module')
def smoke_env(tmp_path_factory):
  """Environment of the notebook kernels: SMOKE sizes, figures and data in
  temporary folders, the checkout importable (as if installed)."""
  root = tmp_path_factory.mktemp('colabs')
  # Relative to where pytest runs, not to the kernel's folder (colabs/).
  figures = os.path.abspath(os.environ.get('HGR_COLAB_FIGURES') or
                            root / 'figures')
  # Both notebooks read the same small synthetic dataset: generated once.
  env = {'HGR_COLAB_SMOKE': '1', 'HGR_COLAB_FIGURES': figures,
         'TFDS_DATA_DIR': str(root / 'tfds'), 'TMPDIR': str(root),
         'PYTHONPATH': os.pathsep.join(
             filter(None, [str(COLABS.parent),
                           os.environ.get('PYTHONPATH')]))}
  saved = {key: os.environ.get(key) for key in env}
  os.environ.update(env)  # The kernel inherits this process's environment.
  yield figures
  for key, value in saved.items():
    if value is None:
      del os.environ[key]
    else:
      os.environ[key] = value


@pytest.mark.parametrize('name', sorted(FIGURES))
def test_notebook_runs_and_saves_its_figures(name, smoke_env):
  notebook = _read(name)
  client = nbclient.NotebookClient(
      notebook, timeout=600, kernel_name='python3',
      resources={'metadata': {'path': str(COLABS)}})
  client.execute()  # Raises CellExecutionError on the first failing cell.
  for cell in notebook.cells:
    if cell.cell_type == 'code':
      assert cell.execution_count is not None, cell.source[:80]
      assert not [o for o in cell.outputs if o.output_type == 'error']
  for figure in FIGURES[name]:
    path = pathlib.Path(smoke_env) / figure
    assert path.is_file(), f'{name} did not save {figure}'
    image = matplotlib.image.imread(path)  # Fails on anything but an image.
    assert image.shape[0] > 200 and image.shape[1] > 400, (figure,
                                                           image.shape)
    colours = np.unique(image.reshape(-1, image.shape[-1]), axis=0)
    assert len(colours) > _MIN_COLOURS, (figure, len(colours))


@pytest.mark.parametrize('name', sorted(FIGURES))
def test_committed_notebook_has_no_outputs(name):
  notebook = _read(name)
  nbformat.validate(notebook)
  for cell in notebook.cells:
    if cell.cell_type == 'code':
      assert cell.outputs == [] and cell.execution_count is None, (
          f'colabs/{name} is committed with outputs: clear them (Jupyter: '
          'Edit > Clear all outputs) before committing.')
  tagged = [c for c in notebook.cells if 'parameters' in c.metadata.get(
      'tags', [])]
  assert len(tagged) == 1 and 'SMOKE' in tagged[0].source
