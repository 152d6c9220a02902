"""Tests for benchmarks.synthetic_oracle."""

import dataclasses

import numpy as np

from benchmarks import oracles as synthetic_oracle
from data_pipelines import synthetic

TINY = synthetic.SyntheticParams(feature_dim=256, num_train_videos=0,
                                 num_validation_videos=0, num_test_videos=40)


def test_caption_events_are_the_described_events():
  for video in synthetic.generate_split('test', TINY):
    for graph in video['graphs']:
      for event in synthetic_oracle.caption_events(graph):
        assert {'agent', 'action', 'patient'} <= set(event)
        matches = [e for e in video['events']
                   if {k: e[k] for k in event} == event]
        assert len(matches) == 1


def test_caption_events_hand_example():
  words = 'the red dog is chased by a man on the beach'.split()
  graph = [dict(ROOT=dict(role='ROOT', spans=[], words=words),
                **{'1': dict(role='V', spans=[4], words=['chased']),
                   '2': dict(role='ARG1', spans=[0, 1, 2],
                             words=['the', 'red', 'dog']),
                   '3': dict(role='ARG0', spans=[5, 6, 7],
                             words=['by', 'a', 'man']),
                   '4': dict(role='ARGM-LOC', spans=[8, 9, 10],
                             words=['on', 'the', 'beach'])}),
           [['1', '2', 'ARG1'], ['1', '3', 'ARG0'], ['1', '4', 'ARGM-LOC']]]
  assert synthetic_oracle.caption_events(graph) == [dict(
      action='chase', patient='dog', patient_attribute='red', agent='man',
      location='beach')]


def test_structure_scores_hand_example():
  # Codes 0 and 1 are one event's static concept and action phase; the
  # video shows them together in frames 2-3 only.
  events = np.array([[0.5, 0.5, 0.0]], np.float32)
  coefficients = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 1, 1]],
                          np.float32)
  scores = synthetic_oracle.structure_scores(
      [coefficients, coefficients[:1]], events, np.array([0]), window=2)
  # Windows of frame pairs: mean evidence 0.5, 0.75, 1.0; a one-frame video
  # has a one-frame window.
  np.testing.assert_allclose(scores, [[1.0], [0.5]])


def test_bag_scores_hand_example():
  bags = np.array([[1, 1, 0], [0, 0, 1]], np.float32)
  coefficients = [np.array([[2, 0, 0], [0, 2, 0]], np.float32)]
  np.testing.assert_allclose(synthetic_oracle.bag_scores(coefficients, bags),
                             [[1.0, 0.0]], atol=1e-6)


def test_oracles_on_easy_and_noisy_data():
  easy = synthetic_oracle.evaluate(TINY, 'test')
  noisy = synthetic_oracle.evaluate(
      dataclasses.replace(TINY, noise=30.0), 'test')
  for oracle in synthetic_oracle.ORACLES:
    assert easy[oracle]['binary_action_pairs'] > 200
    # Role-bound codes tell a swap apart even in a bag of concepts.
    assert easy[oracle]['binary_role_swap'] > 95
    assert easy[oracle]['rsum'] > 500
    assert noisy[oracle]['rsum'] < easy[oracle]['rsum'] - 50
  # Re-bound confusers have the same bag of concepts.
  assert easy['structure']['t2v_r1'] > easy['bag']['t2v_r1']
