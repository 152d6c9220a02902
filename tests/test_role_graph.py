"""Tests for data_pipelines.role_graph against hand-worked arrays."""

import numpy as np
import pytest

from data_pipelines import role_graph

# Verbatim from the official HGR release (sent2rolegraph), node order kept.
OFFICIAL_SENTENCE = ('a egg has been broken and dropped into the cup and a '
                     'water is boiling in the sauce pan')
OFFICIAL_GRAPH = [
    {
        'ROOT': {
            'words': ['a', 'egg', 'has', 'been', 'broken', 'and', 'dropped',
                      'into', 'the', 'cup', 'and', 'a', 'water', 'is',
                      'boiling', 'in', 'the', 'sauce', 'pan'],
            'spans': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                      16, 17, 18],
            'role': 'ROOT',
        },
        '1': {'role': 'V', 'spans': [4], 'words': ['broken']},
        '2': {'role': 'ARG1', 'spans': [0, 1], 'words': ['a', 'egg']},
        '3': {'role': 'V', 'spans': [6], 'words': ['dropped']},
        '4': {'role': 'ARG4', 'spans': [7, 8, 9],
              'words': ['into', 'the', 'cup']},
        '5': {'role': 'V', 'spans': [14], 'words': ['boiling']},
        '6': {'role': 'ARG1', 'spans': [11, 12], 'words': ['a', 'water']},
        '7': {'role': 'ARGM-LOC', 'spans': [15, 16, 17, 18],
              'words': ['in', 'the', 'sauce', 'pan']},
    },
    [
        ['1', '2', 'ARG1'],
        ['3', '2', 'ARG1'],
        ['3', '4', 'ARG4'],
        ['5', '6', 'ARG1'],
        ['5', '7', 'ARGM-LOC'],
    ],
]


def _graph(sentence, nodes, edges):
  """A release-format graph; nodes are (key, role, spans) in order."""
  words = sentence.split()
  root = {'role': 'ROOT', 'spans': list(range(len(words))), 'words': words}
  return [
      dict(ROOT=root, **{key: {'role': role, 'spans': spans,
                               'words': [words[i] for i in spans]}
                         for key, role, spans in nodes}),
      edges,
  ]


def _mask(rows, max_words):
  """bool (len(rows), max_words) with True at each row's listed indices."""
  mask = np.zeros((len(rows), max_words), bool)
  for row, indices in enumerate(rows):
    mask[row, indices] = True
  return mask


def _matrix(size, entries):
  """float32 (size, size), zero except for {(row, col): value}."""
  matrix = np.zeros((size, size), np.float32)
  for (row, col), value in entries.items():
    matrix[row, col] = value
  return matrix


def _check(out, verb_masks, noun_masks, node_roles, adjacency):
  assert out['verb_masks'].dtype == bool
  assert out['noun_masks'].dtype == bool
  assert out['node_roles'].dtype == np.int32
  assert out['adjacency'].dtype == np.float32
  np.testing.assert_array_equal(out['verb_masks'], verb_masks)
  np.testing.assert_array_equal(out['noun_masks'], noun_masks)
  np.testing.assert_array_equal(out['node_roles'], node_roles)
  np.testing.assert_allclose(out['adjacency'], adjacency, rtol=1e-6, atol=0)


def test_roles():
  assert role_graph.NUM_ROLES == len(role_graph.ROLES) == 16
  assert role_graph.role_id('V') == 0
  assert role_graph.role_id('ARG1') == 1
  assert role_graph.role_id('ARG0') == 2
  assert role_graph.role_id('ARGM-LOC') == 6
  assert role_graph.role_id('ARGM-MOD') == 14
  assert role_graph.role_id('NOUN') == 15
  assert role_graph.role_id('C-ARG1') == 1
  assert role_graph.role_id('R-ARG0') == 2
  assert role_graph.role_id('R-ARGM-LOC') == 6
  assert role_graph.role_id('ARGM-GOL') == 15
  assert role_graph.role_id('C-R-ARG0') == 15
  assert role_graph.role_id('ROOT') == 15


def test_special_ids():
  assert role_graph.BOS_ID == 0
  assert role_graph.EOS_ID == 1
  assert role_graph.UNK_ID == 2
  assert role_graph.SPECIAL_TOKENS == ('<bos>', '<eos>', '<unk>')


def test_official_example():
  # Verbs 1, 3, 5 -> nodes 1, 2, 3 (node 4 unused); arguments 2, 4, 6, 7 ->
  # nodes 5, 6, 7, 8 (nodes 9, 10 unused). Argument 2 is shared by the
  # verbs 1 and 3.
  out = role_graph.encode_graph(OFFICIAL_GRAPH, max_words=30, num_verbs=4,
                                num_nouns=6)
  _check(
      out,
      verb_masks=_mask([[4], [6], [14], []], 30),
      noun_masks=_mask([[0, 1], [7, 8, 9], [11, 12], [15, 16, 17, 18], [],
                        []], 30),
      node_roles=[0, 0, 0, 0, 1, 5, 1, 6, 0, 0],
      adjacency=_matrix(11, {
          (1, 0): 1 / 2, (1, 5): 1 / 2,
          (2, 0): 1 / 3, (2, 5): 1 / 3, (2, 6): 1 / 3,
          (3, 0): 1 / 3, (3, 7): 1 / 3, (3, 8): 1 / 3,
          (5, 1): 1 / 2, (5, 2): 1 / 2,
          (6, 2): 1,
          (7, 3): 1,
          (8, 3): 1,
      }))


def test_continuation_reference_and_unknown_roles():
  graph = _graph(
      'a man who is holding a cup drinks it in the cafe slowly',
      [('1', 'V', [4]), ('2', 'ARG0', [0, 1]), ('3', 'R-ARG0', [2]),
       ('4', 'ARG1', [5, 6]), ('5', 'V', [7]), ('6', 'C-ARG1', [8]),
       ('7', 'R-ARGM-LOC', [9, 10, 11]), ('8', 'ARGM-GOL', [12])],
      [['1', '2', 'ARG0'], ['1', '3', 'R-ARG0'], ['1', '4', 'ARG1'],
       ['5', '2', 'ARG0'], ['5', '6', 'C-ARG1'], ['5', '7', 'R-ARGM-LOC'],
       ['5', '8', 'ARGM-GOL']])
  # Verbs -> nodes 1, 2; arguments -> nodes 3..8; node 9 unused.
  out = role_graph.encode_graph(graph, max_words=16, num_verbs=2,
                                num_nouns=7)
  _check(
      out,
      verb_masks=_mask([[4], [7]], 16),
      noun_masks=_mask([[0, 1], [2], [5, 6], [8], [9, 10, 11], [12], []],
                       16),
      node_roles=[0, 0, 2, 2, 1, 1, 6, 15, 0],
      adjacency=_matrix(10, {
          (1, 0): 1 / 4, (1, 3): 1 / 4, (1, 4): 1 / 4, (1, 5): 1 / 4,
          (2, 0): 1 / 5, (2, 3): 1 / 5, (2, 6): 1 / 5, (2, 7): 1 / 5,
          (2, 8): 1 / 5,
          (3, 1): 1 / 2, (3, 2): 1 / 2,
          (4, 1): 1,
          (5, 1): 1,
          (6, 2): 1,
          (7, 2): 1,
          (8, 2): 1,
      }))


TRUNCATED_SENTENCE = 'a dog chases a cat and a bird sings loudly'
TRUNCATED_GRAPH = _graph(
    TRUNCATED_SENTENCE,
    [('1', 'V', [2]), ('2', 'ARG0', [0, 1]), ('3', 'ARG1', [3, 4]),
     ('4', 'V', [8]), ('5', 'ARG0', [6, 7]), ('6', 'ARGM-MNR', [9])],
    [['1', '2', 'ARG0'], ['1', '3', 'ARG1'], ['4', '5', 'ARG0'],
     ['4', '6', 'ARGM-MNR']])


def test_spans_beyond_max_words():
  # With 7 words kept, "sings" (8) and "loudly" (9) are dropped, "a bird"
  # (6, 7) is cut to "a" and keeps its slot but loses its only edge.
  out = role_graph.encode_graph(TRUNCATED_GRAPH, max_words=7, num_verbs=2,
                                num_nouns=4)
  _check(
      out,
      verb_masks=_mask([[2], []], 7),
      noun_masks=_mask([[0, 1], [3, 4], [6], []], 7),
      node_roles=[0, 0, 2, 1, 2, 0],
      adjacency=_matrix(7, {
          (1, 0): 1 / 3, (1, 3): 1 / 3, (1, 4): 1 / 3,
          (3, 1): 1,
          (4, 1): 1,
      }))


def test_more_verbs_and_arguments_than_slots():
  graph = _graph(
      'a boy runs jumps swims and dances in the park today',
      [('1', 'V', [2]), ('2', 'ARG0', [0, 1]), ('3', 'V', [3]),
       ('4', 'V', [4]), ('5', 'ARGM-LOC', [7, 8, 9]), ('6', 'V', [6]),
       ('7', 'ARGM-TMP', [10])],
      [['1', '2', 'ARG0'], ['3', '2', 'ARG0'], ['4', '2', 'ARG0'],
       ['4', '5', 'ARGM-LOC'], ['6', '2', 'ARG0'], ['6', '7', 'ARGM-TMP'],
       ['1', '5', 'ARGM-LOC']])
  # Only verbs 1, 3 (nodes 1, 2) and arguments 2, 5 (nodes 3, 4) fit.
  out = role_graph.encode_graph(graph, max_words=12, num_verbs=2,
                                num_nouns=2)
  _check(
      out,
      verb_masks=_mask([[2], [3]], 12),
      noun_masks=_mask([[0, 1], [7, 8, 9]], 12),
      node_roles=[0, 0, 2, 6],
      adjacency=_matrix(5, {
          (1, 0): 1 / 3, (1, 3): 1 / 3, (1, 4): 1 / 3,
          (2, 0): 1 / 2, (2, 3): 1 / 2,
          (3, 1): 1 / 2, (3, 2): 1 / 2,
          (4, 1): 1,
      }))


def test_sentence_without_verb():
  graph = _graph('a man with a dog',
                 [('1', 'NOUN', [0, 1]), ('2', 'NOUN', [3, 4])], [])
  out = role_graph.encode_graph(graph, max_words=8, num_verbs=2,
                                num_nouns=3)
  _check(
      out,
      verb_masks=_mask([[], []], 8),
      noun_masks=_mask([[0, 1], [3, 4], []], 8),
      node_roles=[0, 0, 15, 15, 0],
      adjacency=np.zeros((6, 6), np.float32))


WORD2INT = {'<bos>': 0, '<eos>': 1, '<unk>': 2, 'a': 3, 'dog': 4, 'runs': 5}


@pytest.mark.parametrize('sentence, max_words, token_ids, length', [
    ('a dog runs fast', 6, [3, 4, 5, 2, 1, 1], 4),
    ('a dog runs a dog runs', 4, [3, 4, 5, 3], 4),
    ('  a\tdog \n', 3, [3, 4, 1], 2),
    ('', 2, [1, 1], 0),
])
def test_encode_tokens(sentence, max_words, token_ids, length):
  out_ids, out_length = role_graph.encode_tokens(sentence, WORD2INT,
                                                 max_words)
  assert out_ids.dtype == np.int32
  np.testing.assert_array_equal(out_ids, token_ids)
  assert out_length == length


def test_encode_caption():
  out = role_graph.encode_caption(TRUNCATED_SENTENCE, TRUNCATED_GRAPH,
                                  WORD2INT, max_words=7, num_verbs=2,
                                  num_nouns=4)
  assert set(out) == {'token_ids', 'length', 'verb_masks', 'noun_masks',
                      'node_roles', 'adjacency'}
  np.testing.assert_array_equal(out['token_ids'], [3, 4, 2, 3, 2, 2, 3])
  assert out['length'].dtype == np.int32 and out['length'].shape == ()
  assert out['length'] == 7
  np.testing.assert_array_equal(out['noun_masks'][2],
                                [0, 0, 0, 0, 0, 0, 1])


def test_build_word2int():
  sentences = ['b a c', 'a b', 'a d', 'e <unk>']
  assert role_graph.build_word2int(sentences) == {
      '<bos>': 0, '<eos>': 1, '<unk>': 2,
      'a': 3, 'b': 4, 'c': 5, 'd': 6, 'e': 7}
  assert role_graph.build_word2int(sentences, min_count=2) == {
      '<bos>': 0, '<eos>': 1, '<unk>': 2, 'a': 3, 'b': 4}
