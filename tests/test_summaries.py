"""Reading a workdir's TensorBoard scalars back."""

from clu import metric_writers
import numpy as np
import pytest

from hgr_jax import summaries


def test_scalars_written_by_clu_come_back_sorted_by_step(tmp_path):
  writer = metric_writers.create_default_writer(str(tmp_path))
  writer.write_hparams({'model': 'hgr', 'lr': 0.1})
  # Out of order, as a resumed run can write them.
  for step, loss in ((10, 0.5), (5, 0.7), (15, 0.25)):
    writer.write_scalars(step, {'train_loss': loss})
  writer.write_scalars(15, {'val_rsum': 412.5})
  writer.flush()

  scalars = summaries.read_scalars(str(tmp_path))

  assert set(scalars) == {'train_loss', 'val_rsum'}
  steps, values = scalars['train_loss']
  np.testing.assert_array_equal(steps, [5, 10, 15])
  np.testing.assert_allclose(values, [0.7, 0.5, 0.25], rtol=1e-6)
  np.testing.assert_allclose(scalars['val_rsum'][1], [412.5])


def test_a_folder_without_event_files_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    summaries.read_scalars(str(tmp_path))
