"""tf.data input: frame selection, pairs, evaluation order, example format."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from conftest import tiny_config
from data_pipelines import example_format
from data_pipelines import input_pipeline
from data_pipelines import role_graph
from data_pipelines import synthetic
from hgr_jax import models


@pytest.mark.parametrize('count', [1, 7, 20, 21, 29, 30, 57, 100])
def test_select_frames_matches_official_indices(count):
  frames = np.arange(count * 2, dtype=np.float32).reshape(count, 2)
  selected, mask = input_pipeline.select_frames(tf.constant(frames), 20)
  kept = min(count, 20)
  expected = (frames[np.round(np.linspace(0, count - 1, 20)).astype(np.int32)]
              if count > 20 else frames)
  np.testing.assert_array_equal(selected.numpy()[:kept], expected)
  np.testing.assert_array_equal(selected.numpy()[kept:], 0.0)
  np.testing.assert_array_equal(mask.numpy(), np.arange(20) < kept)


def _generated(config, split):
  params = synthetic.SyntheticParams(**config.synthetic.to_dict())
  return list(synthetic.generate_split(split, params))


def test_stored_examples_equal_the_generator(tiny_data_dir):
  config = tiny_config(data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  word2int = input_pipeline.vocabulary(builder)
  stored = list(tfds.as_numpy(builder.as_dataset(split='test')))
  generated = {g['video_id']: g for g in _generated(config, 'test')}
  assert sorted(s['video_id'].decode() for s in stored) == sorted(generated)
  for s in stored:
    g = generated[s['video_id'].decode()]
    np.testing.assert_array_equal(s['frames'], g['frames'])
    assert s['num_frames'] == len(g['frames'])
    for i, (text, graph) in enumerate(zip(g['captions'], g['graphs'])):
      expected = role_graph.encode_caption(text, graph, word2int, 30, 4, 6)
      assert s['captions']['text'][i].decode() == text
      for key, value in expected.items():
        np.testing.assert_array_equal(s['captions'][key][i], value)


def test_evaluation_order_and_caption_video_index(tiny_data_dir):
  config = tiny_config(data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  by_id = {g['video_id']: g for g in _generated(config, 'validation')}
  # Evaluation follows the stored order (tfds shuffles examples on writing).
  generated = [by_id[i] for i in input_pipeline.video_ids(builder, 'validation')]
  assert len(generated) == len(by_id)
  videos = list(tfds.as_numpy(input_pipeline.video_dataset(
      builder, 'validation', config, 5)))
  assert [len(b['frames']) for b in videos] == [5, 5, 5, 1]
  first = generated[0]['frames'][:20]
  np.testing.assert_array_equal(videos[0]['frames'][0, :len(first)], first)
  captions = list(tfds.as_numpy(input_pipeline.caption_dataset(
      builder, 'validation', 7)))
  video_index = np.concatenate([b['video_index'] for b in captions])
  expected = np.concatenate([[i] * len(g['captions'])
                             for i, g in enumerate(generated)])
  np.testing.assert_array_equal(video_index, expected)
  texts = [t.decode() for b in captions for t in b['text']]
  assert texts == [text for g in generated for text in g['captions']]


def test_train_epoch_covers_every_pair_once(tiny_data_dir):
  config = tiny_config(data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  batches = list(tfds.as_numpy(input_pipeline.train_dataset(
      builder, config, epoch=0, batch_size=1)))
  total = sum(len(g['captions']) for g in _generated(config, 'train'))
  assert len(batches) == total
  # Every (video, caption) pair exactly once: token ids per video key are the
  # video's captions.
  pairs = {(int(b['video_key'][0]), tuple(b['token_ids'][0])) for b in batches}
  assert len(pairs) == total
  batch = batches[0]
  assert batch['frames'].shape == (1, 20, 32)
  assert batch['adjacency'].shape == (1, 11, 11)
  # Another epoch, another order; the same epoch, the same order.
  order = lambda epoch: [int(b['video_key'][0]) for b in tfds.as_numpy(
      input_pipeline.train_dataset(builder, config, epoch, batch_size=1))]
  assert order(0) == order(0)
  assert order(0) != order(1)


def test_example_format_round_trip():
  features = example_format.features(feature_dim=3, max_words=5, num_verbs=1,
                                     num_nouns=2)
  graph = [{'ROOT': {'role': 'ROOT', 'spans': [0, 1, 2], 'words': []},
            '1': {'role': 'V', 'spans': [1], 'words': ['runs']},
            '2': {'role': 'ARG0', 'spans': [0], 'words': ['dog']}},
           [['1', '2', 'ARG0']]]
  word2int = {'<bos>': 0, '<eos>': 1, '<unk>': 2, 'dog': 3, 'runs': 4}
  example = example_format.make_example(
      'v0', np.ones((2, 3), np.float32), ['dog runs fast'], [graph], word2int,
      5, 1, 2)
  decoded = features.deserialize_example(features.serialize_example(example))
  np.testing.assert_array_equal(decoded['captions']['token_ids'].numpy()[0],
                                [3, 4, 2, 1, 1])
  np.testing.assert_array_equal(decoded['captions']['noun_masks'].numpy()[0],
                                [[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
  assert decoded['num_frames'].numpy() == 2


def test_every_host_gets_the_same_number_of_steps(tiny_data_dir):
  config = tiny_config(data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  captions_per_video = [
      len(g['captions']) for g in _generated(config, 'train')]
  total = sum(captions_per_video)
  assert input_pipeline.count_pairs(builder, 'train') == total
  shards = [input_pipeline.count_pairs(builder, 'train', i, 5)
            for i in range(5)]
  assert sum(shards) == total and len(set(shards)) > 1
  steps = input_pipeline.steps_per_epoch(builder, 4, process_count=5)
  assert steps == min(shards) // 4
  # Hosts read contiguous shares, the first ones one video more.
  ids = input_pipeline.video_ids(builder, 'train')  # Stored order.
  captions_of = {g['video_id']: len(g['captions'])
                 for g in _generated(config, 'train')}
  shares = [[ex['video_id'].decode() for ex in tfds.as_numpy(
      input_pipeline._read(builder, 'train', i, 5, frames=False))]
            for i in range(5)]
  assert sum(shares, []) == ids
  assert [len(s) for s in shares] == [10, 10, 10, 9, 9]
  for share, pairs in zip(shares, shards):
    assert pairs == sum(captions_of[v] for v in share)
  for host in range(5):
    batches = input_pipeline.train_dataset(builder, config, 0, 4, host, 5)
    # Each host could run at least that many full batches.
    assert sum(1 for _ in batches) >= steps


def _pair_ids(batches):
  return [(int(k), tuple(t)) for b in batches
          for k, t in zip(b['video_key'], b['token_ids'])]


def test_global_order_visits_every_pair_once_with_its_video(tiny_data_dir):
  config = tiny_config('hanet', data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  # HANet's concept labels: a caption's mask depends on its video's other
  # captions, so they must be computed before the pairs are flattened.
  extra = {'concept_labels': dict(num_verb_concepts=16, num_noun_concepts=32)}
  pairs = input_pipeline.InMemoryPairs.load(builder, config,
                                            extra_features=extra)
  batches = list(pairs.batches(config.seed, 0, batch_size=1))
  total = sum(len(g['captions']) for g in _generated(config, 'train'))
  assert pairs.num_pairs == total and len(batches) == total
  streamed = list(tfds.as_numpy(input_pipeline.train_dataset(
      builder, config, epoch=0, batch_size=1, extra_features=extra)))
  assert sorted(_pair_ids(batches)) == sorted(_pair_ids(streamed))
  # Each pair comes with its own video's frames and caption fields.
  by_pair = {_pair_ids([b])[0]: b for b in streamed}
  assert 'verb_concept_mask' in batches[0]
  for batch in batches[:40]:
    expected = by_pair[_pair_ids([batch])[0]]
    assert batch.keys() == expected.keys()
    for key in batch:
      np.testing.assert_array_equal(batch[key], expected[key], err_msg=key)


@pytest.mark.parametrize('model, pair_order', [
    ('hgr', 'global'), ('hgr', 'video_buffer'), ('hcmi', 'video_buffer')])
def test_skipping_batches_resumes_the_epoch_where_it_was(tiny_data_dir, model,
                                                         pair_order):
  config = tiny_config(model, data_dir=tiny_data_dir)
  config.pair_order = pair_order
  builder = input_pipeline.get_builder(config)
  extra = models.create_model(config, 100).extra_train_features()
  epochs = input_pipeline.epoch_batches(builder, config, 8,
                                        extra_features=extra)
  whole = list(epochs(1))
  resumed = list(epochs(1, 5))
  assert len(resumed) == len(whole) - 5
  for expected, batch in zip(whole[5:], resumed):
    for key in expected:  # HCMI's random frame views included.
      np.testing.assert_array_equal(batch[key], expected[key], err_msg=key)


def test_global_order_is_seeded_by_epoch(tiny_data_dir):
  config = tiny_config(data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  epochs = input_pipeline.epoch_batches(builder, config, batch_size=8)
  again = input_pipeline.epoch_batches(builder, config, batch_size=8)
  first = _pair_ids(epochs(0))
  assert first == _pair_ids(again(0))  # A resumed run sees the same order.
  assert first != _pair_ids(epochs(1))
  # Full batches only; no pair twice.
  assert len(first) == (input_pipeline.count_pairs(builder, 'train') // 8) * 8
  assert len(set(first)) == len(first)


def test_global_order_mixes_videos_like_a_global_shuffle(tiny_data_dir):
  config = tiny_config(data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  pairs = input_pipeline.InMemoryPairs.load(builder, config)
  batch_size, epochs = 8, 12
  counts = np.bincount(pairs.pair_video)
  n = pairs.num_pairs
  # Expected pairs of captions of one video in a batch of a uniform shuffle.
  expected = (batch_size * (batch_size - 1) / 2 *
              np.sum(counts * (counts - 1)) / (n * (n - 1)))
  same = []
  for epoch in range(epochs):
    for batch in pairs.batches(config.seed, epoch, batch_size):
      keys = batch['video_key']
      same.append((np.sum(keys[:, None] == keys[None, :]) - batch_size) / 2)
  assert abs(np.mean(same) - expected) < 0.3 * expected


def test_unknown_pair_order(tiny_data_dir):
  config = tiny_config(data_dir=tiny_data_dir)
  config.pair_order = 'random'
  with pytest.raises(ValueError, match='config.pair_order'):
    input_pipeline.epoch_batches(input_pipeline.get_builder(config), config, 8)
