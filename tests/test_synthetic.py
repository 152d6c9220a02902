"""Tests for data_pipelines.synthetic."""

import dataclasses
import hashlib
import re
import time

import numpy as np
import pytest

from configs import synthetic as synthetic_config
from data_pipelines import synthetic

SMALL = synthetic.SyntheticParams(feature_dim=64, num_train_videos=80,
                                  num_validation_videos=40,
                                  num_test_videos=120)
# Verb word -> base form of the action.
VERB_ACTIONS = {form: action
                for action, forms in synthetic.ACTION_FORMS.items()
                for form in forms}


@pytest.fixture(scope='module')
def small_splits():
  return {split: list(synthetic.generate_split(split, SMALL))
          for split in synthetic.SPLITS}


def _all_videos(splits):
  return [video for videos in splits.values() for video in videos]


def _assert_same(videos_a, videos_b):
  assert len(videos_a) == len(videos_b)
  for a, b in zip(videos_a, videos_b):
    assert a['video_id'] == b['video_id']
    assert a['frames'].tobytes() == b['frames'].tobytes()
    assert (a['captions'], a['graphs'], a['events']) == (
        b['captions'], b['graphs'], b['events'])


def test_deterministic(small_splits):
  _assert_same(list(synthetic.generate_split('test', SMALL)),
               small_splits['test'])


def test_seed_and_split_change_everything(small_splits):
  other_seed = list(synthetic.generate_split(
      'test', dataclasses.replace(SMALL, seed=1)))
  for other in (other_seed, small_splits['validation']):
    for a, b in zip(small_splits['test'], other):
      assert a['captions'] != b['captions']
      assert a['events'] != b['events']
      if a['frames'].shape == b['frames'].shape:
        assert not np.allclose(a['frames'], b['frames'])


def test_split_size_keeps_prefix(small_splits):
  fewer = list(synthetic.generate_split(
      'train', dataclasses.replace(SMALL, num_train_videos=30)))
  _assert_same(fewer, small_splits['train'][:30])


def test_unknown_split():
  with pytest.raises(ValueError):
    synthetic.generate_split('dev', SMALL)


def test_invalid_params():
  with pytest.raises(ValueError):
    synthetic.SyntheticParams(min_frames=5)
  with pytest.raises(ValueError):
    synthetic.SyntheticParams(min_captions=4, max_captions=3)


def test_shapes_and_counts(small_splits):
  for split, videos in small_splits.items():
    assert len(videos) == getattr(SMALL, f'num_{split}_videos')
    for index, video in enumerate(videos):
      assert video['video_id'] == f'synthetic_{split}_{index:06d}'
      frames = video['frames']
      assert frames.dtype == np.float32
      assert frames.ndim == 2 and frames.shape[1] == SMALL.feature_dim
      assert SMALL.min_frames <= frames.shape[0] <= SMALL.max_frames
      assert np.all(np.isfinite(frames))
      assert 5 <= len(video['captions']) <= 10
      assert len(set(video['captions'])) == len(video['captions'])
      assert len(video['graphs']) == len(video['captions'])
      assert len(video['events']) in (1, 2)


def test_both_event_counts_occur(small_splits):
  counts = [len(v['events']) for v in _all_videos(small_splits)]
  assert 0.3 < np.mean(np.equal(counts, 2)) < 0.7


def test_events(small_splits):
  for video in _all_videos(small_splits):
    for event in video['events']:
      assert event['agent'] in synthetic.ENTITIES
      assert event['patient'] in synthetic.ENTITIES
      assert event['agent'] != event['patient']
      assert event['agent_attribute'] in synthetic.ATTRIBUTES
      assert event['patient_attribute'] in synthetic.ATTRIBUTES
      assert event['action'] in synthetic.ACTIONS
      assert event['location'] in synthetic.LOCATIONS


@pytest.mark.parametrize('num_events', [1, 2])
def test_event_lengths(num_events):
  rng = np.random.default_rng(0)
  lengths = [synthetic._event_lengths(n, num_events, rng, SMALL)
             for n in range(6, 25) for _ in range(20)]
  for n, run in zip(np.repeat(np.arange(6, 25), 20), lengths):
    assert run.sum() == n
    assert np.all(run >= SMALL.min_event_frames)
  if num_events == 2:
    assert any(abs(run[0] - run[1]) > 1 for run in lengths)


def _check_graph(caption, graph):
  words = caption.split()
  assert caption == ' '.join(words) and re.fullmatch('[a-z ]+', caption)
  nodes, edges = graph
  assert list(nodes) == ['ROOT'] + [str(i) for i in range(1, len(nodes))]
  assert nodes['ROOT'] == {'role': 'ROOT', 'spans': list(range(len(words))),
                           'words': words}
  for key, node in nodes.items():
    spans = node['spans']
    assert spans == list(range(spans[0], spans[-1] + 1))
    assert node['words'] == [words[i] for i in spans]
    if node['role'] == 'V':
      assert len(spans) == 1 and node['words'][0] in VERB_ACTIONS
  for verb, argument, role in edges:
    assert nodes[verb]['role'] == 'V'
    assert nodes[argument]['role'] == role
    assert role in ('ARG0', 'ARG1', 'ARGM-LOC')
  arguments = [argument for _, argument, _ in edges]
  assert sorted(arguments) == sorted(
      key for key, node in nodes.items() if node['role'] not in ('ROOT', 'V'))


def test_graphs_are_exact(small_splits):
  for video in _all_videos(small_splits):
    for caption, graph in zip(video['captions'], video['graphs']):
      _check_graph(caption, graph)


def _noun_phrase_matches(words, entity, attribute):
  article = 'an' if attribute == 'old' else 'a'
  return words in ([article, attribute, entity], ['the', attribute, entity],
                   ['a', entity], ['the', entity])


def test_captions_describe_events(small_splits):
  for video in _all_videos(small_splits):
    # Actions are distinct within a video, so a verb identifies its event.
    event_of = {e['action']: i for i, e in enumerate(video['events'])}
    for caption, (nodes, edges) in zip(video['captions'], video['graphs']):
      described = []
      for verb, argument, role in edges:
        event_index = event_of[VERB_ACTIONS[nodes[verb]['words'][0]]]
        event = video['events'][event_index]
        words = nodes[argument]['words']
        if role == 'ARG0':
          if words[0] == 'by':
            words = words[1:]
          assert _noun_phrase_matches(words, event['agent'],
                                      event['agent_attribute'])
        elif role == 'ARG1':
          assert _noun_phrase_matches(words, event['patient'],
                                      event['patient_attribute'])
        else:
          assert ' '.join(words) == (
              synthetic.LOCATION_PHRASES[event['location']])
        if event_index not in described:
          described.append(event_index)
      if ' then ' in caption:
        assert described == [0, 1]
      if ' after ' in caption:
        assert described == [1, 0]


def test_vocabulary(small_splits):
  vocabulary = synthetic.vocabulary()
  assert vocabulary == sorted(set(vocabulary))
  assert synthetic.vocabulary(SMALL) == vocabulary
  used = {word for video in _all_videos(small_splits)
          for caption in video['captions'] for word in caption.split()}
  assert used <= set(vocabulary)
  # "an" only before "old".
  assert 'an' in used and 'old' in used
  for video in _all_videos(small_splits):
    for caption in video['captions']:
      words = caption.split()
      for word, following in zip(words, words[1:]):
        assert (word == 'an') == (word in ('a', 'an') and
                                  following == 'old')


def test_word2int():
  word2int = synthetic.word2int()
  assert (word2int['<bos>'], word2int['<eos>'], word2int['<unk>']) == (
      0, 1, 2)
  assert sorted(word2int.values()) == list(range(len(word2int)))
  assert list(word2int)[3:] == synthetic.vocabulary()


def _swapped_roles(e):
  return dict(e, agent=e['patient'], agent_attribute=e['patient_attribute'],
              patient=e['agent'], patient_attribute=e['agent_attribute'])


def _confuser_kind(base, other):
  """Which confuser `other` is of `base` (lists of events), if any."""
  if len(base) != len(other) or base == other:
    return None
  differing = [i for i, (a, b) in enumerate(zip(base, other)) if a != b]
  if len(differing) == 1:
    a, b = base[differing[0]], other[differing[0]]
    changed = {k for k in a if a[k] != b[k]}
    if b == _swapped_roles(a):
      return 'swap_roles'
    if changed == {'action'}:
      return 'other_action'
    if changed in ({'agent'}, {'patient'}):
      return 'other_entity'
  bags_equal = all(sorted(e[k] for e in base) == sorted(e[k] for e in other)
                   for k in base[0])
  return 'rebind' if len(base) == 2 and bags_equal else None


@pytest.mark.parametrize('split', ['validation', 'test'])
def test_confusers(small_splits, split):
  videos = small_splits[split]
  kinds = set()
  has_confuser = np.zeros(len(videos), bool)
  for i, base in enumerate(videos):
    for j in range(i + 1, min(i + 4, len(videos))):
      kind = _confuser_kind(base['events'], videos[j]['events'])
      if kind:
        kinds.add(kind)
        has_confuser[[i, j]] = True
  assert kinds == {'swap_roles', 'other_action', 'other_entity', 'rebind'}
  assert has_confuser.mean() > 0.9


def test_rebinding_is_not_a_reordering(small_splits):
  # Re-bound events must be new events, not the base's in another order.
  videos = small_splits['test']
  pairs = [(a, b) for a, b in zip(videos, videos[1:])
           if _confuser_kind(a['events'], b['events']) == 'rebind']
  assert pairs
  for a, b in pairs:
    assert sorted(map(sorted, map(dict.items, a['events']))) != sorted(
        map(sorted, map(dict.items, b['events'])))


def _mean_features_and_roles(videos):
  single = [v for v in videos if len(v['events']) == 1]
  features = np.stack([v['frames'].mean(axis=0) for v in single])
  agents = [synthetic.ENTITIES.index(v['events'][0]['agent']) for v in single]
  patients = [synthetic.ENTITIES.index(v['events'][0]['patient'])
              for v in single]
  return features, np.array(agents), np.array(patients)


def test_agent_is_linearly_recoverable():
  params = dataclasses.replace(SMALL, feature_dim=256, num_train_videos=400,
                               num_test_videos=200)
  x_train, agents_train, _ = _mean_features_and_roles(
      synthetic.generate_split('train', params))
  x_test, agents_test, patients_test = _mean_features_and_roles(
      synthetic.generate_split('test', params))
  # Ridge regression onto one-hot agents: the patient is in the same frames,
  # so only role-bound codes let the probe tell the two entities apart.
  targets = np.eye(len(synthetic.ENTITIES))[agents_train]
  weights = np.linalg.solve(
      x_train.T @ x_train + 0.1 * np.eye(params.feature_dim),
      x_train.T @ targets)
  predicted = (x_test @ weights).argmax(axis=1)
  assert len(predicted) > 50
  assert np.mean(predicted == agents_test) > 0.9  # Chance: 1/16.
  assert np.mean(predicted == patients_test) < 0.05


def _config_params(variant):
  return synthetic.SyntheticParams(
      **synthetic_config.get_config(variant).synthetic.to_dict())


@pytest.mark.parametrize('variant', ['hgr', 'easy'])
def test_config_generation_is_fast(variant):
  # CPU time: the test machine is shared.
  start = time.process_time()
  params = _config_params(variant)
  num_videos = sum(len(list(synthetic.generate_split(split, params)))
                   for split in synthetic.SPLITS)
  assert num_videos == sum(getattr(params, f'num_{split}_videos')
                           for split in synthetic.SPLITS)
  assert time.process_time() - start < 10


def test_easy_config_is_the_first_dataset():
  assert _config_params('vsepp,easy') == synthetic.SyntheticParams()
  assert _config_params('hanet') == _config_params('hgr')
  assert _config_params('hgr') != synthetic.SyntheticParams()
  with pytest.raises(ValueError, match='unknown variant'):
    synthetic_config.get_config('hard')


def _digest(videos):
  digest = hashlib.sha256()
  for video in videos:
    digest.update(video['frames'].tobytes())
    digest.update(repr((video['captions'], video['graphs'],
                        video['events'])).encode())
  return digest.hexdigest()


def test_easy_data_unchanged():
  # Recorded with the generator before the difficulty knobs existed.
  params = synthetic.SyntheticParams(num_train_videos=20,
                                     num_validation_videos=0,
                                     num_test_videos=20)
  assert _digest(synthetic.generate_split('train', params)) == (
      '50205ee2d88616061e524334bebb80ccfd6e93590b5df4439cb36899c6c7274a')
  assert _digest(synthetic.generate_split('test', params)) == (
      'd29f137d4983c0ea5b4d47558adea84c2091474ca63cc34484a1badd68d4b769')


HARD = dataclasses.replace(_config_params('hgr'), num_train_videos=40,
                           num_validation_videos=0, num_test_videos=60)


def test_hard_data_deterministic_and_different():
  for split in ('train', 'test'):
    first = list(synthetic.generate_split(split, HARD))
    assert all(video['frames'].dtype == np.float32 for video in first)
    _assert_same(first, list(synthetic.generate_split(split, HARD)))
    assert _digest(first) != _digest(synthetic.generate_split(
        split, dataclasses.replace(HARD, seed=1)))


@pytest.mark.parametrize('overlap', [0.0, 0.3, 0.8])
def test_code_overlap(overlap):
  params = dataclasses.replace(SMALL, feature_dim=2048, code_overlap=overlap)
  codes = synthetic.concept_codes(params)
  assert codes.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 1, rtol=1e-5)
  num = len(synthetic.ENTITIES)
  agents, patients = codes[:num], codes[num:2 * num]
  # The random parts are nearly orthogonal (cosine ~ 1 / sqrt(2048)), the
  # shared latent parts identical.
  same_entity = np.sum(agents * patients, axis=1)
  np.testing.assert_allclose(same_entity, overlap, atol=0.08)
  # Distinct entities overlap through their latents, on average by less.
  cosines = agents @ agents.T
  other = np.abs(cosines[~np.eye(num, dtype=bool)])
  assert other.mean() < max(0.5 * overlap, 0.03)
  if overlap:
    assert other.max() > 0.1
  if not overlap:
    np.testing.assert_array_equal(
        codes, synthetic.concept_codes(dataclasses.replace(
            params, latent_dim=3)))


def test_distractors():
  params = dataclasses.replace(HARD, num_distractors=3)
  videos = list(synthetic.generate_split('test', params))
  roles = set()
  for video in videos:
    assert len(video['distractors']) == 3
    used = {e[r] for e in video['events'] for r in ('agent', 'patient')}
    entities = [d['entity'] for d in video['distractors']]
    assert len(set(entities)) == 3 and not used & set(entities)
    words = {w for caption in video['captions'] for w in caption.split()}
    assert not words & set(entities)
    roles.update(d['role'] for d in video['distractors'])
    for d in video['distractors']:
      assert 0 <= d['start'] <= d['end'] <= 1
  assert roles == {'agent', 'patient'}
  assert all(not v['distractors'] for v in synthetic.generate_split(
      'test', dataclasses.replace(params, num_distractors=0)))


def test_distractor_frames():
  distractors = [dict(entity='cat', role='patient', start=0.5, end=0.75),
                 dict(entity='dog', role='agent', start=0.99, end=0.99)]
  code_ids = synthetic._distractor_code_ids(distractors, 8)
  cat = len(synthetic.ENTITIES) + synthetic.ENTITIES.index('cat')
  dog = synthetic.ENTITIES.index('dog')
  np.testing.assert_array_equal(code_ids[:, 0], [-1] * 4 + [cat] * 2 + [-1] * 2)
  np.testing.assert_array_equal(code_ids[:, 1], [-1] * 7 + [dog])


@pytest.mark.parametrize('extra', [0, 2, 5])
def test_extra_confusers(extra):
  params = dataclasses.replace(SMALL, extra_confusers=extra)
  rng = np.random.default_rng(0)
  sizes = []
  for _ in range(100):
    group = synthetic._confuser_group(rng, params)
    assert all(a != b for i, a in enumerate(group) for b in group[:i])
    assert all(_confuser_kind(group[0], other) for other in group[1:])
    sizes.append(len(group))
  assert min(sizes) >= 3 + extra
  assert max(sizes) == 4 + extra
