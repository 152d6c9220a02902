"""Binary selection twins: synthetic templates and encoded role graphs."""

import collections
import dataclasses

import numpy as np
import pytest

from data_pipelines import perturbations
from data_pipelines import role_graph
from data_pipelines import synthetic
from hgr_jax import binary_selection

SMALL = synthetic.SyntheticParams(feature_dim=16, num_test_videos=40)
VERB_ACTIONS = {form: action
                for action, forms in synthetic.ACTION_FORMS.items()
                for form in forms}
WORD2INT = role_graph.build_word2int(
    ['a man chases the dog is chased by an old cat feeds car passes'])


def _heads(graph):
  """Counter of (role, last word) of the graph's nodes except the root."""
  return collections.Counter((n['role'], n['words'][-1])
                             for key, n in graph[0].items() if key != 'ROOT')


@pytest.fixture(scope='module')
def synthetic_twins():
  return list(synthetic.perturbed_captions('test', SMALL))


@pytest.mark.parametrize('num_distractors', [0, 3])
def test_synthetic_twins_change_one_concept(synthetic_twins, num_distractors):
  params = dataclasses.replace(SMALL, num_distractors=num_distractors)
  if num_distractors:
    synthetic_twins = synthetic.perturbed_captions('test', params)
  videos = {v['video_id']: v
            for v in synthetic.generate_split('test', params)}
  for twin in synthetic_twins:
    video = videos[twin['video_id']]
    entities = {e[r] for e in video['events'] for r in ('agent', 'patient')}
    distractors = {d['entity'] for d in video['distractors']}
    assert len(distractors) == num_distractors
    actions = {e['action'] for e in video['events']}
    assert twin['captions'] == video['captions']
    for i, (caption, graph) in enumerate(zip(video['captions'],
                                             video['graphs'])):
      true = _heads(graph)
      for kind in synthetic.PERTURBATIONS:
        text, twin_graph = twin['perturbed'][kind][i]
        assert text != caption
        # The graph is exact: node words are the caption's words at spans.
        words = text.split()
        for node in twin_graph[0].values():
          assert [words[j] for j in node['spans']] == node['words']
        heads = _heads(twin_graph)
        removed, added = true - heads, heads - true
        if kind == 'role_swap':
          # One agent and one patient exchange their entities.
          assert sorted(r for r, _ in removed) == ['ARG0', 'ARG1']
          assert {w for _, w in removed} == {w for _, w in added}
          assert {r for r, _ in added} == {'ARG0', 'ARG1'}
        elif kind == 'action':
          ((role, old),), ((_, new),) = removed, added
          assert role == 'V' and VERB_ACTIONS[new] not in actions
          assert VERB_ACTIONS[old] in actions
        else:
          ((role, old),), ((new_role, new),) = removed, added
          assert role == new_role and role in ('ARG0', 'ARG1')
          assert old in entities and new not in entities | distractors


def test_synthetic_twins_keep_the_wording():
  # Same template, articles and attributes: an action twin differs from its
  # caption in the verb word only.
  for video in synthetic.perturbed_captions('test', SMALL):
    for caption, (text, _) in zip(video['captions'],
                                  video['perturbed']['action']):
      assert len(text.split()) == len(caption.split())
      assert sum(a != b for a, b in zip(text.split(), caption.split())) == 1


def _encode(sentence, graph):
  return role_graph.encode_caption(sentence, graph, WORD2INT, 10, 2, 3)


def _graph(words, nodes):
  """nodes: list of (role, spans) in node order; every argument of verb 1."""
  graph = {'ROOT': dict(role='ROOT', spans=list(range(len(words))),
                        words=words)}
  edges = []
  for i, (role, spans) in enumerate(nodes):
    graph[str(i + 1)] = dict(role=role, spans=spans,
                             words=[words[j] for j in spans])
    if role != 'V':
      edges.append(['1', str(i + 1), role])
  return [graph, edges]


@pytest.mark.parametrize('sentence,nodes,expected,expected_nodes', [
    ('a man chases the dog', [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4])],
     'the dog chases a man', [('V', [2]), ('ARG1', [3, 4]), ('ARG0', [0, 1])]),
    # Spans of different lengths: the words between them shift.
    ('the dog is chased by an old cat',
     [('V', [3]), ('ARG1', [0, 1]), ('ARG0', [4, 5, 6, 7])],
     'by an old cat is chased the dog',
     [('V', [5]), ('ARG0', [6, 7]), ('ARG1', [0, 1, 2, 3])]),
])
def test_swap_roles(sentence, nodes, expected, expected_nodes):
  caption = _encode(sentence, _graph(sentence.split(), nodes))
  swapped = perturbations.swap_roles(caption)
  want = _encode(expected, _graph(expected.split(), expected_nodes))
  for key in want:
    np.testing.assert_array_equal(swapped[key], want[key], err_msg=key)


def test_swap_roles_needs_agent_and_patient():
  sentence = 'a man chases'
  caption = _encode(sentence, _graph(sentence.split(),
                                     [('V', [2]), ('ARG0', [0, 1])]))
  assert perturbations.swap_roles(caption) is None


def test_replace_head():
  sentence = 'a man chases the dog'
  caption = _encode(sentence, _graph(sentence.split(), [
      ('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4])]))
  rng = np.random.default_rng(0)
  ids = lambda words: np.array([WORD2INT[w] for w in words.split()])
  for _ in range(10):
    out = perturbations.replace_head(caption, 'entity', ids('man dog cat'),
                                     ids('man dog'), rng)
    int2word = {i: w for w, i in WORD2INT.items()}
    words = [int2word[t] for t in out['token_ids'][:5]]
    assert words in (['a', 'cat', 'chases', 'the', 'dog'],
                     ['a', 'man', 'chases', 'the', 'cat'])
    out = perturbations.replace_head(caption, 'action', ids('chases feeds'),
                                     ids('chases'), rng)
    assert out['token_ids'][2] == WORD2INT['feeds']
    np.testing.assert_array_equal(np.delete(out['token_ids'], 2),
                                  np.delete(caption['token_ids'], 2))
  # No candidate outside the excluded words.
  assert perturbations.replace_head(caption, 'action', ids('chases'),
                                    ids('chases'), rng) is None


def test_perturb_split_on_synthetic_captions():
  word2int = synthetic.word2int()
  captions, caption_video = [], []
  for index, video in enumerate(synthetic.generate_split('test', SMALL)):
    for text, graph in zip(video['captions'], video['graphs']):
      captions.append(role_graph.encode_caption(text, graph, word2int, 30, 4,
                                                6))
      caption_video.append(index)
  stacked = {k: np.stack([c[k] for c in captions]) for k in captions[0]}
  caption_video = np.array(caption_video)
  vocabulary = perturbations.head_vocabulary(stacked)
  int2word = {i: w for w, i in word2int.items()}
  seen = collections.defaultdict(set)
  for video in synthetic.generate_split('test', SMALL):
    for graph in video['graphs']:
      for role, word in _heads(graph):
        if role == 'V':
          seen['action'].add(word)
        elif role in ('ARG0', 'ARG1', 'ARG2'):
          seen['entity'].add(word)
  for kind in ('action', 'entity'):
    assert {int2word[i] for i in vocabulary[kind]} == seen[kind]
  assert seen['entity'] <= set(synthetic.ENTITIES)
  twins = perturbations.perturb_split(stacked, caption_video, seed=0)
  for kind, (perturbed, rows) in twins.items():
    # Every synthetic caption has an agent, a patient and a verb.
    np.testing.assert_array_equal(rows, np.arange(len(captions)))
    changed = perturbed['token_ids'] != stacked['token_ids']
    assert changed.any(axis=1).all(), kind
    if kind != 'role_swap':
      assert (changed.sum(axis=1) == 1).all()
      # The new word is in no caption of the video.
      new = perturbed['token_ids'][changed]
      for row, word in zip(rows, new):
        same_video = stacked['token_ids'][caption_video == caption_video[row]]
        assert word not in same_video


def test_identical_twins_are_left_out():
  # The role swap of "a car passes a car" has the true caption's words.
  texts_nodes = [
      ('a car passes a car', [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4])]),
      ('a man chases the dog',
       [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4])]),
      ('the dog chases the dog',
       [('V', [2]), ('ARG0', [0, 1]), ('ARG1', [3, 4])]),
  ]
  captions = [_encode(text, _graph(text.split(), nodes))
              for text, nodes in texts_nodes]
  stacked = {k: np.stack([c[k] for c in captions]) for k in captions[0]}
  twins = perturbations.perturb_split(stacked, np.array([0, 1, 2]), seed=0)
  np.testing.assert_array_equal(twins['role_swap'][1], [0, 1, 2])
  kept, dropped = binary_selection.drop_identical_twins(stacked, twins)
  assert dropped['role_swap'] == 2
  np.testing.assert_array_equal(kept['role_swap'][1], [1])
  want = _encode('the dog chases a man', _graph(
      'the dog chases a man'.split(),
      [('V', [2]), ('ARG1', [3, 4]), ('ARG0', [0, 1])]))
  for key, value in want.items():
    np.testing.assert_array_equal(kept['role_swap'][0][key][0], value)
  # Replacing a head always changes a word: nothing of those is left out.
  for kind in ('action', 'entity'):
    assert dropped[kind] == 0
    np.testing.assert_array_equal(kept[kind][1], twins[kind][1])

