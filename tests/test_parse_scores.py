"""Tests for the gold set and the scores of benchmarks/parse_scores.py."""

import collections

import pytest

from benchmarks import parse_scores
from data_pipelines import caption_parser
from data_pipelines import srl_import


def test_bracketed_frames_become_allennlp_tags():
  srl = srl_import.bracketed_to_srl([
      '[ARG0 a man] is [V putting] [ARG1 bacon] [ARG2 on a pan]',
      'a man is putting bacon on a pan'])
  assert srl['words'] == 'a man is putting bacon on a pan'.split()
  assert srl['verbs'][0] == {
      'verb': 'putting',
      'tags': ['B-ARG0', 'I-ARG0', 'O', 'B-V', 'B-ARG1', 'B-ARG2', 'I-ARG2',
               'I-ARG2']}
  assert srl['verbs'][1]['tags'] == ['O'] * 8


def test_bracketed_frames_over_other_words_are_refused():
  with pytest.raises(ValueError, match='is not over the words'):
    srl_import.bracketed_to_srl(['[ARG0 a man] [V runs]', 'a dog runs'])
  with pytest.raises(ValueError, match='Unbalanced bracket'):
    srl_import.bracketed_to_tags('[ARG0 a man [V runs]')


def test_gold_graph_of_frames_and_of_augmentation():
  graph = parse_scores.gold_graph({
      'sentence': 'a man is cutting and slicing an onion',
      'frames': ['[ARG0 a man] is [V cutting] and slicing [ARG1 an onion]',
                 '[ARG0 a man] is cutting and [V slicing] [ARG1 an onion]',
                 'a man [V is] cutting and slicing an onion']})
  # The argument-less frame of "is" is dropped; shared arguments are one
  # node each, as in the official conversion.
  assert [(n['role'], n['spans']) for k, n in graph[0].items()
          if k != 'ROOT'] == [('V', [3]), ('ARG0', [0, 1]), ('ARG1', [6, 7]),
                              ('V', [5])]
  assert graph[1] == [['1', '2', 'ARG0'], ['1', '3', 'ARG1'],
                      ['4', '2', 'ARG0'], ['4', '3', 'ARG1']]
  graph = parse_scores.gold_graph({
      'sentence': 'a man is on a skateboard',
      'augment': '[NOUN a man] [V is] on [NOUN a skateboard]'})
  # Noun chunks first, then verbs, as the release's augmentation.
  assert [(n['role'], n['spans']) for k, n in graph[0].items()
          if k != 'ROOT'] == [('NOUN', [0, 1]), ('NOUN', [4, 5]), ('V', [2])]
  with pytest.raises(ValueError, match='no frame with an argument'):
    parse_scores.gold_graph({'sentence': 'a man', 'frames': []})


def test_gold_set_is_complete():
  gold = parse_scores.load_gold()
  assert len(gold) == 300
  roles = collections.Counter(
      n['role'] for graph in gold.values() for k, n in graph[0].items()
      if k != 'ROOT')
  assert roles['ARG2'] > 0 and roles['NOUN'] > 0
  assert sum(len(s.split()) >= 14 for s in gold) >= 20


def test_held_out_set_is_complete():
  gold = parse_scores.load_gold(parse_scores.HELDOUT_PATH)
  assert len(gold) == 200
  roles = collections.Counter(
      n['role'] for graph in gold.values() for k, n in graph[0].items()
      if k != 'ROOT')
  # Imperatives: no subjects to speak of, many destinations.
  assert roles['ARG0'] <= 2 and roles['ARG2'] > 50


def test_score_by_hand():
  gold = {'s': [{'ROOT': {}, '1': {'role': 'V', 'spans': [2]},
                 '2': {'role': 'ARG0', 'spans': [0, 1]}},
                [['1', '2', 'ARG0']]]}
  predicted = {'s': [{'ROOT': {}, '1': {'role': 'V', 'spans': [2]},
                      '2': {'role': 'ARG1', 'spans': [0, 1]},
                      '3': {'role': 'ARGM-LOC', 'spans': [3, 4]}},
                     [['1', '2', 'ARG1'], ['1', '3', 'ARGM-LOC']]]}
  result = parse_scores.score(predicted, gold)
  # Nodes: V right of 3 predicted and 2 gold.
  assert result['node']['precision'] == pytest.approx(1 / 3)
  assert result['node']['recall'] == pytest.approx(1 / 2)
  assert result['node']['f1'] == pytest.approx(0.4)
  assert result['span']['recall'] == 1.0
  assert result['exact_graphs'] == 0
  assert result['by_role']['ARG0'] == dict(precision=0, recall=0, f1=0,
                                           predicted=0, gold=1)


def test_parser_keeps_the_issue_targets_on_the_gold_set():
  # The targets: node F1 >= 90% and exact graphs >= 70% (measured: see README).
  gold = parse_scores.load_gold()
  predicted = caption_parser.parse_captions(list(gold))
  result = parse_scores.score(predicted, gold)
  assert result['node']['f1'] >= 0.90
  assert result['exact_graphs'] >= 0.70


def test_parser_keeps_its_held_out_score():
  # Measured 83.5% node F1 and 68.5% exact graphs (docs/caption_parser.md);
  # a rule change that loses more than a point fails here.
  gold = parse_scores.load_gold(parse_scores.HELDOUT_PATH)
  predicted = caption_parser.parse_captions(list(gold))
  result = parse_scores.score(predicted, gold)
  assert result['node']['f1'] >= 0.825
  assert result['exact_graphs'] >= 0.67
