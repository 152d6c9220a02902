"""Tests for data_pipelines.srl_import (no spaCy needed)."""

import json
import subprocess
import sys
import types

import pytest

from data_pipelines import role_graph
from data_pipelines import srl_import
from tests import test_role_graph

OFFICIAL_WORDS = test_role_graph.OFFICIAL_SENTENCE.split()


def _tags(spans, num_words=len(OFFICIAL_WORDS)):
  """BIO tags with {role: (start, end)} spans, end exclusive."""
  tags = ['O'] * num_words
  for role, (start, end) in spans.items():
    role = role.split(':')[0]  # 'ARG1:2' lets a role appear twice.
    tags[start] = 'B-' + role
    for i in range(start + 1, end):
      tags[i] = 'I-' + role
  return tags


# What AllenNLP's BERT SRL predicts for the official example (reconstructed by
# hand: the release ships only the converted graph). It labels every verb
# token, auxiliaries included; the auxiliaries get no arguments.
#   a egg has been broken and dropped into the cup and a water is boiling in
#   0 1   2   3    4      5   6       7    8   9   10  11 12   13 14      15
#   the sauce pan
#   16  17    18
OFFICIAL_SRL = {
    'words': OFFICIAL_WORDS,
    'verbs': [
        {'verb': 'has', 'tags': _tags({'V': (2, 3)})},
        {'verb': 'been', 'tags': _tags({'V': (3, 4)})},
        {'verb': 'broken', 'tags': _tags({'ARG1': (0, 2), 'V': (4, 5)})},
        {'verb': 'dropped',
         'tags': _tags({'ARG1': (0, 2), 'V': (6, 7), 'ARG4': (7, 10)})},
        {'verb': 'is', 'tags': _tags({'V': (13, 14)})},
        {'verb': 'boiling',
         'tags': _tags({'ARG1': (11, 13), 'V': (14, 15),
                        'ARGM-LOC': (15, 19)})},
    ],
}


def _as_json(graph):
  # The release stores edges as JSON lists; compare after a round trip.
  return json.loads(json.dumps(graph))


def test_official_example_reproduced_exactly():
  graphs = srl_import.srl_to_graphs(
      {test_role_graph.OFFICIAL_SENTENCE: OFFICIAL_SRL})
  graph = graphs[test_role_graph.OFFICIAL_SENTENCE]
  assert _as_json(graph) == _as_json(test_role_graph.OFFICIAL_GRAPH)
  # Node order is part of the format: slots are filled in this order.
  assert list(graph[0]) == list(test_role_graph.OFFICIAL_GRAPH[0])


def test_broken_bio_is_repaired():
  # "I-ARG4" right after the verb and "I-ARGM-LOC" after an O start spans,
  # as the official conversion does; the graph is unchanged.
  srl = json.loads(json.dumps(OFFICIAL_SRL))
  srl['verbs'][3]['tags'][7] = 'I-ARG4'
  srl['verbs'][5]['tags'][15] = 'I-ARGM-LOC'
  graph = srl_import.frames_to_graph(OFFICIAL_WORDS,
                                     srl_import.frames_from_srl(srl))
  assert _as_json(graph) == _as_json(test_role_graph.OFFICIAL_GRAPH)


def test_decode_tags():
  assert srl_import.decode_tags(
      ['B-ARG0', 'I-ARG0', 'I-ARG1', 'B-V', 'O', 'I-ARG1', 'B-ARG1',
       'I-ARG1']) == [('ARG0', (0, 1)), ('ARG1', (2,)), ('V', (3,)),
                      ('ARG1', (5,)), ('ARG1', (6, 7))]
  # A leading I- starts a span (the official code dropped the sentence).
  assert srl_import.decode_tags(['I-ARG0', 'B-V']) == [('ARG0', (0,)),
                                                      ('V', (1,))]
  with pytest.raises(ValueError, match='X-ARG0'):
    srl_import.decode_tags(['X-ARG0'])


def test_repeated_roles_shared_nodes_and_dropped_frames():
  words = 'a man puts a cup on a table and on a shelf'.split()
  srl = {'words': words, 'verbs': [
      # Two ARGM-LOC spans in one frame: two nodes.
      {'verb': 'puts', 'tags': _tags(
          {'ARG0': (0, 2), 'V': (2, 3), 'ARG1': (3, 5), 'ARGM-LOC': (5, 8),
           'ARGM-LOC:2': (9, 12)}, len(words))},
      # No argument: dropped.
      {'verb': 'a', 'tags': _tags({'V': (6, 7)}, len(words))},
      # Two verb spans: dropped.
      {'verb': 'puts', 'tags': _tags(
          {'V': (2, 3), 'ARG1': (3, 5), 'V:2': (8, 9)}, len(words))},
      # The verb span seen before: the whole frame is skipped.
      {'verb': 'puts', 'tags': _tags({'V': (2, 3), 'ARG2': (9, 12)},
                                     len(words))},
  ]}
  nodes, edges = srl_import.frames_to_graph(words,
                                            srl_import.frames_from_srl(srl))
  assert {k: (n['role'], n['spans']) for k, n in nodes.items()} == {
      'ROOT': ('ROOT', list(range(12))),
      '1': ('V', [2]), '2': ('ARG0', [0, 1]), '3': ('ARG1', [3, 4]),
      '4': ('ARGM-LOC', [5, 6, 7]), '5': ('ARGM-LOC', [9, 10, 11])}
  assert nodes['5']['words'] == ['on', 'a', 'shelf']
  assert edges == [['1', '2', 'ARG0'], ['1', '3', 'ARG1'],
                   ['1', '4', 'ARGM-LOC'], ['1', '5', 'ARGM-LOC']]


def test_same_span_in_another_role_is_another_node():
  words = 'a dog chases a cat that bites a dog'.split()
  frames = [((2,), [('ARG0', (0, 1)), ('ARG1', (3, 4))]),
            ((6,), [('ARG0', (3, 4)), ('R-ARG0', (5,)), ('ARG1', (7, 8))])]
  nodes, edges = srl_import.frames_to_graph(words, frames)
  assert [(n['role'], n['spans']) for n in nodes.values()][1:] == [
      ('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4]), ('V', [6]),
      ('ARG0', [3, 4]), ('R-ARG0', [5]), ('ARG1', [7, 8])]
  assert edges[2:] == [['4', '5', 'ARG0'], ['4', '6', 'R-ARG0'],
                       ['4', '7', 'ARG1']]


class _Doc(list):
  """A stand-in for a spaCy Doc: tokens with i/text/tag_, and noun chunks."""

  def __init__(self, tags, noun_chunks):
    super().__init__(types.SimpleNamespace(i=i, text=f'w{i}', tag_=tag)
                     for i, tag in enumerate(tags))
    self.noun_chunks = [types.SimpleNamespace(start=start, end=end)
                        for start, end in noun_chunks]


def test_augment_noun_chunks_then_verbs():
  words = 'a man is on a skateboard'.split()
  graph = srl_import.augment(
      srl_import.root_graph(words),
      _Doc(['DT', 'NN', 'VBZ', 'IN', 'DT', 'NN'], [(0, 2), (4, 6)]))
  assert {k: (n['role'], n['spans'], n['words'])
          for k, n in graph[0].items() if k != 'ROOT'} == {
              '1': ('NOUN', [0, 1], ['a', 'man']),
              '2': ('NOUN', [4, 5], ['a', 'skateboard']),
              '3': ('V', [2], ['is'])}
  assert graph[1] == []


def test_augment_nn_words_without_noun_chunks():
  words = 'cooking show video'.split()
  graph = srl_import.augment(srl_import.root_graph(words),
                             _Doc(['VBG', 'NN', 'NNS'], []))
  assert [(n['role'], n['spans']) for n in graph[0].values()][1:] == [
      ('NOUN', [1]), ('NOUN', [2]), ('V', [0])]


def test_augment_leaves_graphs_with_frames_alone():
  graph = _as_json(test_role_graph.OFFICIAL_GRAPH)
  assert srl_import.augment(graph, None) == _as_json(
      test_role_graph.OFFICIAL_GRAPH)


def test_augment_rejects_misaligned_parse():
  with pytest.raises(ValueError, match='whitespace-split words'):
    srl_import.augment(srl_import.root_graph(['a', 'cat']),
                       _Doc(['DT', 'NN', 'NN'], []))


def test_srl_to_graphs_parses_only_sentences_without_frames():
  calls = []

  def parse_words(sentences):
    calls.append(sentences)
    return [_Doc(['DT', 'NN'], [(0, 2)])]

  graphs = srl_import.srl_to_graphs(
      {test_role_graph.OFFICIAL_SENTENCE: OFFICIAL_SRL,
       'a cat': {'words': ['a', 'cat'], 'verbs': []}}, parse_words)
  assert calls == [[['a', 'cat']]]
  assert graphs['a cat'][0]['1'] == {'role': 'NOUN', 'spans': [0, 1],
                                     'words': ['a', 'cat']}
  out = role_graph.encode_graph(graphs['a cat'], 4, 2, 2)
  assert out['node_roles'].tolist() == [0, 0, 15, 0]


def test_tag_count_mismatch_names_the_verb():
  with pytest.raises(ValueError, match="'runs' has 1 tags for 2 words"):
    srl_import.frames_from_srl({'words': ['dog', 'runs'],
                                'verbs': [{'verb': 'runs', 'tags': ['B-V']}]})


def test_library_imports_without_spacy():
  code = ('import sys; sys.modules["spacy"] = None\n'
          'from data_pipelines import caption_parser, parse_captions, '
          'srl_import\n'
          'print("ok")')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, check=True)
  assert out.stdout.strip() == 'ok'
