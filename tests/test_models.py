"""Whole models: padding of frames, words and phrase nodes changes no score."""

import jax
import numpy as np
import pytest

from conftest import tiny_config
from conftest import zero_inputs
from hgr_jax import models


def _batch(config, rng, batch_size=5, feature_dim=12):
  batch = zero_inputs(config, feature_dim, batch_size)
  frames = rng.integers(4, config.max_frames + 1, batch_size)
  words = rng.integers(6, config.max_words + 1, batch_size)
  batch['frames'] = rng.normal(size=batch['frames'].shape).astype(np.float32)
  batch['frame_mask'] = np.arange(config.max_frames)[None] < frames[:, None]
  batch['length'] = words.astype(np.int32)
  batch['token_ids'] = np.where(
      np.arange(config.max_words)[None] < words[:, None],
      rng.integers(3, 50, batch['token_ids'].shape), 1).astype(np.int32)
  for b in range(batch_size):  # Verb 0 -> nouns 0 and 1, verb 1 -> noun 2.
    batch['verb_masks'][b, 0, 1] = batch['verb_masks'][b, 1, 4] = True
    batch['noun_masks'][b, 0, [0, 2]] = True
    batch['noun_masks'][b, 1, 3] = batch['noun_masks'][b, 2, 5] = True
    batch['node_roles'][b, :2] = 0
    batch['node_roles'][b, config.num_verbs:config.num_verbs + 3] = [2, 1, 6]
    edges = [(0, 1), (0, 2)] + [(v, n) for v, n in ((1, 5), (1, 6), (2, 7))]
    for src, dst in edges:
      batch['adjacency'][b, dst, src] = 1.0
      if src:
        batch['adjacency'][b, src, dst] = 1.0
    rows = batch['adjacency'][b].sum(1, keepdims=True)
    batch['adjacency'][b] /= np.maximum(rows, 1.0)
  return batch


def _pad_with_noise(batch, config, rng):
  noisy = {k: v.copy() for k, v in batch.items()}
  noisy['frames'] = np.where(batch['frame_mask'][..., None], batch['frames'],
                             rng.normal(size=batch['frames'].shape) * 10
                             ).astype(np.float32)
  valid_words = np.arange(config.max_words)[None] < batch['length'][:, None]
  noisy['token_ids'] = np.where(valid_words, batch['token_ids'],
                                rng.integers(3, 50, batch['token_ids'].shape)
                                ).astype(np.int32)
  # Roles of unused node slots are padding too.
  used = np.concatenate([batch['verb_masks'].any(-1),
                         batch['noun_masks'].any(-1)], axis=1)
  noisy['node_roles'] = np.where(used, batch['node_roles'],
                                 rng.integers(0, 16, used.shape)).astype(np.int32)
  return noisy


@pytest.mark.parametrize('name', ['hgr', 'vsepp', 'hanet'])
def test_padding_changes_no_score(name):
  config = tiny_config(name)
  rng = np.random.default_rng(0)
  batch = _batch(config, rng)
  model = models.create_model(config, 50)
  params = model.init(jax.random.PRNGKey(0), batch)
  scores = model.apply(params, batch)
  noisy_scores = model.apply(params, _pad_with_noise(batch, config, rng))
  assert set(scores) >= {'global', 'fused'}
  for level in scores:
    np.testing.assert_allclose(noisy_scores[level], scores[level], atol=1e-5,
                               err_msg=level)
  # The same inputs, cut to fewer padded frames and words, score the same.
  short = dict(batch, frames=batch['frames'][:, :15],
               frame_mask=batch['frame_mask'][:, :15])
  short['frame_mask'][:, 4:] = False
  full = dict(batch, frame_mask=np.zeros_like(batch['frame_mask']))
  full['frame_mask'][:, :4] = True
  np.testing.assert_allclose(model.apply(params, short)['fused'],
                             model.apply(params, full)['fused'], atol=1e-5)


def test_hgr_levels_and_fusion():
  config = tiny_config('hgr')
  batch = _batch(config, np.random.default_rng(1))
  model = models.create_model(config, 50)
  params = model.init(jax.random.PRNGKey(0), batch)
  scores = model.apply(params, batch)
  np.testing.assert_allclose(
      scores['fused'], (scores['global'] + scores['verb'] + scores['noun']) / 3,
      rtol=1e-6)
  assert scores['fused'].shape == (5, 5)
  assert np.all(np.abs(np.asarray(scores['fused'])) <= 1 + 1e-6)


def test_unknown_model_name():
  config = tiny_config('hgr')
  config.model_name = 'nope'
  with pytest.raises(ValueError, match="'nope'; registered models: hanet, "
                     'hcmi, hgr, vsepp'):
    models.create_model(config, 50)


def test_hanet_levels_fusion_and_batch_statistics():
  config = tiny_config('hanet')
  config.model.update(dict(text_dropout=0.0, video_dropout=0.0,
                          gcn_dropout=0.0))
  rng = np.random.default_rng(2)
  batch = _batch(config, rng)
  model = models.create_model(config, 50)
  variables = model.init(jax.random.PRNGKey(0), batch)
  scores = model.apply(variables, batch)
  five = ('global', 'verb', 'noun', 'individual_verb', 'individual_noun')
  np.testing.assert_allclose(
      scores['fused'], (sum(scores[k] for k in five) / 5 +
                        (scores['concept_verb'] + scores['concept_noun']) / 2)
      / 2, rtol=1e-5)
  for level in ('concept_verb', 'concept_noun'):
    assert np.all((scores[level] >= 0) & (scores[level] <= 1))

  # Training updates the running statistics from valid positions only.
  train_batch = {**batch, 'video_key': np.arange(5, dtype=np.int32)}
  for kind, size in (('verb', config.model.num_verb_concepts),
                     ('noun', config.model.num_noun_concepts)):
    train_batch[f'{kind}_concept_labels'] = np.zeros((5, size), bool)
    train_batch[f'{kind}_concept_mask'] = np.ones((5, size), bool)
  def updated_stats(b):
    (_, terms), updates = model.apply(
        variables, b, mutable=['batch_stats'], method=model.train_loss,
        rngs={'dropout': jax.random.PRNGKey(1)})
    assert set(terms) == {'matching', 'concept', 'video_verb_bce',
                          'video_noun_bce', 'text_verb_bce', 'text_noun_bce'}
    return updates['batch_stats']
  stats = updated_stats(train_batch)
  noisy_stats = updated_stats(
      {**train_batch, **_pad_with_noise(batch, config, rng)})
  for a, b in zip(jax.tree.leaves(stats), jax.tree.leaves(noisy_stats)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  moved = jax.tree.map(lambda new, old: float(np.max(np.abs(new - old))),
                       stats, variables['batch_stats'])
  assert min(jax.tree.leaves(moved)) > 0
