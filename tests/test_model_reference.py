"""Training HGR, VSE++ and HANet 3 steps gives the recorded parameters (on
the backend and jaxlib they were recorded with).

Re-record after a deliberate change: python -m tests.model_reference --record
"""

import json

import numpy as np
import pytest

import model_reference


# Biases a softmax or a batch norm cancels: an attention's key bias and an
# attention pool's score bias shift all logits of a softmax alike, and a
# batch norm subtracts the concept classifiers' convolution bias (whose
# noise its running mean then carries).
_ROUNDING_NOISE = ('key/bias', 'pool/score/bias', 'classifier/conv/bias',
                   'classifier/norm/mean')


@pytest.mark.parametrize('name', model_reference.MODELS)
def test_three_steps_match_the_recorded_fingerprint(tiny_data_dir, name):
  with open(model_reference.REFERENCE_FILE) as f:
    recorded = json.load(f)
  where = recorded[model_reference.RECORDED_WITH]
  if where != model_reference.platform_key():
    pytest.skip(f'fingerprints recorded with {where}, this is '
                f'{model_reference.platform_key()}: re-record with '
                '`python -m tests.model_reference --record` to compare here')
  expected = recorded[name]
  actual = model_reference.trained_fingerprint(name, tiny_data_dir)
  for group in ('params', 'batch_stats'):
    assert set(actual[group]) == set(expected[group]), group
    for path, leaf in expected[group].items():
      if path.endswith(_ROUNDING_NOISE):
        # Zero gradient up to rounding, which Adam turns into steps of up
        # to the learning rate (1e-3) either way.
        np.testing.assert_allclose(actual[group][path]['samples'],
                                   leaf['samples'], atol=3 * 1e-3,
                                   err_msg=f'{group}/{path}')
        continue
      np.testing.assert_allclose(actual[group][path]['samples'],
                                 leaf['samples'], rtol=1e-5, atol=1e-7,
                                 err_msg=f'{group}/{path}')
      np.testing.assert_allclose(actual[group][path]['sum'], leaf['sum'],
                                 rtol=1e-5, atol=1e-5,
                                 err_msg=f'{group}/{path} sum')
  assert set(actual['metrics']) == set(expected['metrics'])
  np.testing.assert_allclose(
      [actual['metrics'][k] for k in sorted(expected['metrics'])],
      [expected['metrics'][k] for k in sorted(expected['metrics'])],
      rtol=1e-5)
