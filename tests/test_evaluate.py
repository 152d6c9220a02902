"""Evaluator: budgeted tiles, pair scores, streaming top-k, binary selection."""

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import tiny_config
from conftest import train_element_spec
from data_pipelines import input_pipeline
from data_pipelines import role_graph
from data_pipelines import synthetic
from hgr_jax import binary_selection
from hgr_jax import evaluate
from hgr_jax import models
from hgr_jax import sharding
from hgr_jax import train


@pytest.mark.parametrize('budget', [10_000, 1e6, 3e8, 2e11])
@pytest.mark.parametrize('devices', [1, 8])
def test_tile_shape_fits_the_budget(budget, devices):
  bytes_per_pair, videos, captions = 4800.0, 1500, 15_000
  tile_videos, tile_captions = evaluate.tile_shape(
      bytes_per_pair, budget, videos, captions, devices)
  assert tile_captions % (8 * devices) == 0
  assert 1 <= tile_videos <= videos + 7
  assert tile_captions <= captions + 8 * devices - 1
  smallest = tile_videos == 1 and tile_captions == 8 * devices
  if not smallest:
    # Each device holds tile_videos x tile_captions / devices pairs.
    assert tile_videos * tile_captions / devices * bytes_per_pair <= budget
  if budget == 2e11:  # Room for the whole problem in one tile.
    assert (tile_videos, tile_captions) == (1504, 15_000 + (-15_000) % (
        8 * devices))


def test_tile_shape_grows_with_the_budget():
  shapes = [evaluate.tile_shape(1000.0, b, 10_000, 10_000, 1)
            for b in (1e6, 1e7, 1e8)]
  pairs = [v * c for v, c in shapes]
  assert pairs[0] < pairs[1] < pairs[2]


@pytest.fixture(scope='module')
def tiny_model(tiny_data_dir):
  config = tiny_config(data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  model = models.create_model(config, len(input_pipeline.vocabulary(builder)))
  mesh = sharding.data_mesh()
  variables = jax.device_get(train.create_train_state(
      model, config, train_element_spec(config, model), mesh).variables)
  evaluator = evaluate.Evaluator(model, mesh, batch_size=5,
                                 memory_budget_gb=1e-4)
  videos = list(tfds.as_numpy(input_pipeline.video_dataset(
      builder, 'test', config, 100)))[0]
  captions = list(tfds.as_numpy(input_pipeline.caption_dataset(
      builder, 'test', 1000)))[0]
  scores = evaluator.score_matrix(
      variables, evaluator.encode_videos(variables, [videos]),
      evaluator.encode_captions(variables, [captions]))
  return dict(config=config, builder=builder, model=model, variables=variables,
              evaluator=evaluator, videos=videos, captions=captions,
              scores=scores)


def test_pair_scores_are_the_matrix_entries(tiny_model):
  m = tiny_model
  evaluator, variables = m['evaluator'], m['variables']
  rows = m['captions']['video_index']
  # Each caption against its own video, and against the next video.
  for video_rows in (rows, (rows + 1) % 16):
    pairs = evaluator.pair_scores(
        variables, evaluator.encode_videos(variables, [m['videos']]),
        video_rows,
        [m['captions']])
    for level in ('global', 'verb', 'noun', 'fused'):
      np.testing.assert_allclose(
          pairs[level], m['scores'][level][video_rows, np.arange(len(rows))],
          atol=1e-5)


def test_top_k_videos_streams_the_ranking(tiny_model):
  m = tiny_model
  evaluator, variables = m['evaluator'], m['variables']
  batches = [{k: m['videos'][k][i:i + 5] for k in ('frames', 'frame_mask')}
             for i in range(0, 16, 5)]
  result = evaluator.top_k_videos(
      variables, evaluator.encode_captions(variables, [m['captions']]),
      batches, 4)
  full = m['scores']['fused'].T
  expected = np.argsort(-full, axis=1, kind='stable')[:, :4]
  np.testing.assert_array_equal(result.indices, expected)
  np.testing.assert_allclose(result.scores,
                             np.take_along_axis(full, expected, 1), atol=1e-5)


def test_synthetic_twins_align_with_stored_captions(tiny_model):
  m = tiny_model
  config, builder = m['config'], m['builder']
  twins = binary_selection.synthetic_twins(builder, 'test', config)
  params = synthetic.SyntheticParams(**config.synthetic.to_dict())
  generated = {v['video_id']: v
               for v in synthetic.perturbed_captions('test', params)}
  word2int = input_pipeline.vocabulary(builder)
  for kind, (twin_captions, rows) in twins.items():
    np.testing.assert_array_equal(rows, np.arange(len(rows)))
    assert len(rows) == len(m['captions']['length'])
  # Row r of the stored captions is the caption the twin of row r came from.
  ids = input_pipeline.video_ids(builder, 'test')
  row = 0
  for video_index, video_id in enumerate(ids):
    video = generated[video_id]
    for i, text in enumerate(video['captions']):
      assert m['captions']['video_index'][row] == video_index
      tokens, _ = role_graph.encode_tokens(text, word2int, config.max_words)
      np.testing.assert_array_equal(m['captions']['token_ids'][row], tokens)
      twin_text = video['perturbed']['action'][i][0]
      twin_tokens, _ = role_graph.encode_tokens(twin_text, word2int,
                                                config.max_words)
      np.testing.assert_array_equal(twins['action'][0]['token_ids'][row],
                                    twin_tokens)
      row += 1


@pytest.mark.parametrize('dataset', ['synthetic', 'role_graphs'])
def test_binary_selection_accuracy(tiny_model, dataset):
  m = tiny_model
  config = tiny_config(data_dir=m['config'].data_dir)
  config.dataset = dataset  # Any other name takes the role-graph path.
  results = binary_selection.evaluate(m['evaluator'], m['variables'],
                                      m['builder'], 'test', config)
  num_captions = len(m['captions']['length'])
  for kind in binary_selection.TYPES:
    assert (results[f'binary_{kind}_pairs'] +
            results[f'binary_{kind}_identical']) == num_captions
    assert 0.0 <= results[f'binary_{kind}'] <= 100.0


def test_accuracies():
  true = {'role_swap': np.array([0.5, 0.2, 0.9, 0.1])}
  twin = {'role_swap': np.array([0.4, 0.3, 0.1, 0.1])}
  assert binary_selection.accuracies(true, twin) == {
      'binary_role_swap': 50.0, 'binary_role_swap_pairs': 4}
