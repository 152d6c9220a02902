"""HANet's concept vocabulary and caption labels."""

import collections
import json
import types

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from data_pipelines import concepts
from data_pipelines import input_pipeline
from data_pipelines import synthetic
from hgr_jax import models


def test_word_lemmas_use_the_lexicon_offline():
  word2int = {'<bos>': 0, '<eos>': 1, '<unk>': 2, 'chased': 3, 'men': 4,
              'red': 5, 'the': 6, 'is': 7, 'running': 8, 'boxes': 9, '2': 10}
  verbs, nouns = concepts.word_lemmas(word2int)
  assert verbs[3] == 'chase' and verbs[8] == 'run' and verbs[9] == 'box'
  assert nouns[4] == 'man' and nouns[9] == 'box'
  assert nouns[5] is None  # An adjective reading rules a noun out.
  assert nouns[3] is None  # Only a verb.
  for index in (0, 1, 2, 6, 7, 10):  # Special, stop and non-alphabetic words.
    assert verbs[index] is None and nouns[index] is None


def test_counts_split_words_by_verb_nodes_and_rank_like_the_official_code():
  token_ids = np.array([[3, 4, 5, 1], [5, 3, 6, 6]])
  lengths = np.array([3, 4])
  verb_masks = np.zeros((2, 2, 4), bool)
  verb_masks[0, 0, 1] = verb_masks[1, 1, 0] = True  # Words 4 and 5.
  in_verbs, elsewhere = concepts.count_words(token_ids, lengths, verb_masks, 8)
  np.testing.assert_array_equal(in_verbs, [0, 0, 0, 0, 1, 1, 0, 0])
  np.testing.assert_array_equal(elsewhere, [0, 0, 0, 2, 0, 1, 2, 0])
  lemmas = [None, None, None, 'b', None, 'a', 'c', None]
  # Ties (b and c twice) are ordered by lemma, in reverse.
  assert concepts._ranked(elsewhere, lemmas) == [('c', 2), ('b', 2), ('a', 1)]


def test_caption_labels_mask_concepts_of_the_other_captions():
  verb_table = np.array([-1, -1, -1, 0, 1, -1], np.int32)
  noun_table = np.array([-1, -1, -1, -1, 0, 1], np.int32)
  captions = {
      'token_ids': np.array([[3, 5, 1, 1], [4, 5, 3, 1], [5, 4, 1, 1]],
                            np.int32),
      'length': np.array([2, 3, 2], np.int32),
      'verb_masks': np.zeros((3, 1, 4), bool),
  }
  captions['verb_masks'][0, 0, 0] = True  # Caption 0: verb 0 (word 3).
  captions['verb_masks'][1, 0, 0] = True  # Caption 1: verb 1 (word 4).
  out = {k: v.numpy() for k, v in concepts.caption_labels(
      {k: tf.constant(v) for k, v in captions.items()}, verb_table,
      noun_table, 3, 2).items()}
  # Word 3 outside a verb node is no verb; word 4 outside one is noun 0.
  np.testing.assert_array_equal(out['verb_concept_labels'],
                                [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
  np.testing.assert_array_equal(out['noun_concept_labels'],
                                [[0, 1], [0, 1], [1, 1]])
  np.testing.assert_array_equal(out['verb_concept_mask'],
                                [[1, 0, 1], [0, 1, 1], [0, 0, 1]])
  np.testing.assert_array_equal(out['noun_concept_mask'],
                                [[0, 1], [0, 1], [1, 1]])


def test_prepared_vocabulary_counts_the_synthetic_roles(tiny_data_dir):
  config = tiny_config('hanet', data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  with open(concepts.path(builder)) as f:
    vocabulary = json.load(f)
  # Reference: the generator's own role graphs and word lists.
  base_form = {form: base for base, forms in synthetic.ACTION_FORMS.items()
               for form in forms + (base,)}
  nouns = set(synthetic.ENTITIES) | set(synthetic.LOCATIONS)
  verb_counts, noun_counts = collections.Counter(), collections.Counter()
  params = synthetic.SyntheticParams(**config.synthetic.to_dict())
  for video in synthetic.generate_split('train', params):
    for graph in video['graphs']:
      nodes = graph[0]
      in_verbs = {i for node in nodes.values() if node['role'] == 'V'
                  for i in node['spans']}
      for i, word in enumerate(nodes['ROOT']['words']):
        if i in in_verbs:
          verb_counts[base_form[word]] += 1
        elif word in nouns:
          noun_counts[word] += 1
  assert dict(vocabulary['verbs']) == dict(verb_counts)
  assert dict(vocabulary['nouns']) == dict(noun_counts)
  counts = [count for _, count in vocabulary['nouns']]
  assert counts == sorted(counts, reverse=True)

  verb_table, noun_table = concepts.load_tables(builder, 5, 32)
  word2int = input_pipeline.vocabulary(builder)
  in_top5 = [w for w, base in base_form.items() if w in word2int and
             base in dict(vocabulary['verbs'][:5])]
  assert len(in_top5) == 15  # Three forms of each of the top 5 verbs.
  assert {int(verb_table[word2int[w]]) for w in in_top5} == set(range(5))
  assert all(verb_table[word2int[w]] == 0 for w in synthetic.ACTION_FORMS[
      vocabulary['verbs'][0][0]])
  assert np.sum(verb_table >= 0) == 15
  assert noun_table[word2int['red']] == -1


def test_only_requested_fields_are_added(tiny_data_dir):
  config = tiny_config('hgr', data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  assert models.create_model(config, 50).extra_train_features() == {}
  spec = input_pipeline.train_dataset(builder, config, 0, 8).element_spec
  assert not any('concept' in name for name in spec)
  with pytest.raises(ValueError, match=r"unknown training features "
                     r"\['frames_view2'\]; add them to input_pipeline"):
    input_pipeline.train_dataset(builder, config, 0, 8,
                                 extra_features={'frames_view2': {}})


def test_train_batches_carry_labels_of_their_captions(tiny_data_dir):
  config = tiny_config('hanet', data_dir=tiny_data_dir)
  builder = input_pipeline.get_builder(config)
  extra = models.create_model(config, 50).extra_train_features()
  assert extra == {'concept_labels': dict(num_verb_concepts=16,
                                          num_noun_concepts=32)}
  batch = next(iter(input_pipeline.train_dataset(builder, config, 0, 8,
                                                 extra_features=extra)))
  verb_table, noun_table = concepts.load_tables(builder, 16, 32)
  for b in range(8):
    words = batch['token_ids'][b, :batch['length'][b]].numpy()
    in_verb = batch['verb_masks'][b].numpy().any(0)[:len(words)]
    verbs = {verb_table[w] for w in words[in_verb]} - {-1}
    nouns = {noun_table[w] for w in words[~in_verb]} - {-1}
    assert set(np.flatnonzero(batch['verb_concept_labels'][b])) == verbs
    assert set(np.flatnonzero(batch['noun_concept_labels'][b])) == nouns
    assert verbs and nouns
    assert np.all(batch['noun_concept_mask'][b].numpy()[sorted(nouns)])


def test_sentencepiece_datasets_get_no_concepts(tmp_path):
  builder = types.SimpleNamespace(
      builder_config=types.SimpleNamespace(tokenizer='sentencepiece'),
      data_dir=str(tmp_path))
  concepts.prepare(builder)  # Nothing to do, nothing written.
  assert not list(tmp_path.iterdir())
  with pytest.raises(ValueError, match='--config.tokenizer=word'):
    concepts.load_tables(builder, 512, 1024)
