"""Tests for the SentencePiece option (data_pipelines.tokenizers)."""

import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import export_release
from data_pipelines import input_pipeline
from data_pipelines import role_graph
from data_pipelines import synthetic
from data_pipelines import synthetic_dataset
from data_pipelines import tokenizers
from tests import conftest
from tests import test_role_graph


class _SplitEveryWordInTwo:
  """Hand-made sub-word tokeniser: word i -> tokens 2i, 2i + 1."""

  def encode_words(self, words):
    ids = [10 + j for i in range(len(words)) for j in (2 * i, 2 * i + 1)]
    return ids, [[2 * i, 2 * i + 1] for i in range(len(words))]


def test_spans_move_to_token_positions():
  # a dog chases a cat and a bird sings loudly
  # 0 1   2      3 4   5   6 7    8     9
  out = role_graph.encode_caption(
      test_role_graph.TRUNCATED_SENTENCE, test_role_graph.TRUNCATED_GRAPH,
      _SplitEveryWordInTwo(), max_words=12, num_verbs=2, num_nouns=4)
  np.testing.assert_array_equal(out['token_ids'], np.arange(10, 22))
  assert out['length'] == 12
  # "chases" (word 2) -> tokens 4, 5; "sings" (8) -> 16, 17: cut off.
  np.testing.assert_array_equal(
      out['verb_masks'], np.isin(np.arange(12), [4, 5])[None] &
      np.array([[True], [False]]))
  expected_nouns = np.zeros((4, 12), bool)
  expected_nouns[0, [0, 1, 2, 3]] = True  # "a dog"
  expected_nouns[1, [6, 7, 8, 9]] = True  # "a cat"
  # "a bird" (words 6, 7 -> tokens 12..15) starts at 12 >= max_words.
  np.testing.assert_array_equal(out['noun_masks'], expected_nouns)
  np.testing.assert_array_equal(out['node_roles'], [0, 0, 2, 1, 0, 0])


@pytest.fixture(scope='module')
def captions():
  params = synthetic.SyntheticParams(num_train_videos=40, feature_dim=8)
  return [c for v in synthetic.generate_split('train', params)
          for c in v['captions']]


def test_trained_model_keeps_special_ids_and_word_boundaries(captions):
  tokenizer = tokenizers.train_sentencepiece(captions, vocab_size=60)
  vocab = tokenizer.vocab
  assert [vocab[t] for t in role_graph.SPECIAL_TOKENS] == [0, 1, 2]
  assert sorted(vocab.values()) == list(range(len(vocab)))
  assert len(vocab) <= 60
  words = 'a small horse is chased by a zebra'.split()
  ids, positions = tokenizer.encode_words(words)
  # Per-word encoding is the sentence's encoding, in order, without gaps.
  processor = tokenizer._processor  # pylint: disable=protected-access
  assert ids == processor.encode(' '.join(words))
  assert [p for word in positions for p in word] == list(range(len(ids)))
  assert all(positions)
  # "z" never occurs in the training captions.
  assert role_graph.UNK_ID in [ids[p] for p in positions[-1]]
  assert ''.join(processor.id_to_piece(ids[p]) for p in positions[2]) == (
      '\u2581horse')
  # Training is deterministic.
  assert tokenizers.train_sentencepiece(
      captions, vocab_size=60).model_proto == tokenizer.model_proto


def test_unknown_tokenizer_kind():
  with pytest.raises(ValueError, match="config.tokenizer='bpe'"):
    synthetic_dataset.make_config(synthetic.SyntheticParams(), 30, 4, 6,
                                  tokenizer='bpe')


@pytest.fixture(scope='module')
def sentencepiece_builder(tmp_path_factory):
  config = conftest.tiny_config(data_dir=str(tmp_path_factory.mktemp('sp')))
  config.tokenizer = 'sentencepiece'
  config.sentencepiece_vocab_size = 80
  config.max_words = 40
  return config, input_pipeline.prepare(input_pipeline.get_builder(config))


def test_synthetic_builder_with_sentencepiece(sentencepiece_builder):
  config, builder = sentencepiece_builder
  word_config = conftest.tiny_config()
  assert builder.builder_config.name != input_pipeline.get_builder(
      word_config).builder_config.name
  info = builder.info.metadata['tokenizer']
  assert info['kind'] == 'sentencepiece'
  model_path = os.path.join(builder.data_dir, info['file'])
  with open(model_path, 'rb') as f:
    model = f.read()
  # The model stored with the data is the one trained on the train split.
  params = synthetic.SyntheticParams(**config.synthetic.to_dict())
  train_captions = [c for v in synthetic.generate_split('train', params)
                    for c in v['captions']]
  assert model == tokenizers.train_sentencepiece(
      train_captions, config.sentencepiece_vocab_size).model_proto
  vocab = input_pipeline.vocabulary(builder)
  assert len(vocab) == info['vocab_size'] == max(vocab.values()) + 1

  # A fresh builder reads the model back from the dataset folder.
  tokenizer = input_pipeline.tokenizer(input_pipeline.get_builder(config))
  assert tokenizer.model_proto == model
  videos = {v['video_id']: v for v in synthetic.generate_split('test', params)}
  example = next(iter(tfds.as_numpy(builder.as_dataset(split='test'))))
  video = videos[example['video_id'].decode()]
  caption = example['captions']
  text = caption['text'][0].decode()
  assert text == video['captions'][0]
  ids, positions = tokenizer.encode_words(text.split())
  assert caption['length'][0] == len(ids) > len(text.split())
  np.testing.assert_array_equal(caption['token_ids'][0, :len(ids)], ids)
  assert (caption['token_ids'][0, len(ids):] == role_graph.EOS_ID).all()
  # Each verb mask marks exactly the pieces of the verb's words.
  graph = video['graphs'][0]
  verbs = [n for n in graph[0].values() if n['role'] == 'V']
  for slot, node in enumerate(verbs):
    expected = np.zeros(config.max_words, bool)
    expected[[p for i in node['spans'] for p in positions[i]]] = True
    np.testing.assert_array_equal(caption['verb_masks'][0, slot], expected)


def test_tampered_model_file_is_refused(sentencepiece_builder, tmp_path):
  _, builder = sentencepiece_builder
  copy = tmp_path / 'copy'
  shutil.copytree(builder.data_dir, copy)
  with open(copy / builder.info.metadata['tokenizer']['file'], 'ab') as f:
    f.write(b'x')
  metadata = tokenizers.TokenizerMetadata()
  with pytest.raises(ValueError, match='prepare it again'):
    metadata.load_metadata(str(copy))


def test_export_refuses_piece_datasets(sentencepiece_builder, tmp_path):
  _, builder = sentencepiece_builder
  with pytest.raises(ValueError, match='--config.tokenizer=word'):
    export_release.export(builder, str(tmp_path / 'out'), 'features')
