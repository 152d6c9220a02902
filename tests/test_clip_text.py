"""The CLIP tokenizer kind and the CLIP text tower inside the models."""

import json
import os
import shutil

import jax
import numpy as np
import optax
import pytest
import tensorflow_datasets as tfds
import tokenizers as hf_tokenizers

from conftest import tiny_config
from data_pipelines import input_pipeline
from data_pipelines import role_graph
from data_pipelines import tokenizers
from hgr_jax import clip_checkpoint
from hgr_jax import models
from hgr_jax import sharding
from hgr_jax import train
from hgr_jax.models import text_encoders
from tests import clip_testing


@pytest.fixture(scope='module')
def clip_dir(tmp_path_factory):
  clip_dir = str(tmp_path_factory.mktemp('clip'))
  clip_testing.make_checkpoint(clip_dir)
  return clip_dir


def test_words_become_pieces_between_start_and_end(clip_dir):
  tokenizer = tokenizers.load_clip_tokenizer(clip_dir)
  sentence = 'a zebra throws a ball'
  ids, positions = tokenizer.encode_words(sentence.split())
  # Independent reference: the tokenizer on the whole sentence with its own
  # special-token template.
  reference = hf_tokenizers.Tokenizer.from_file(
      os.path.join(clip_dir, 'tokenizer.json')).encode(sentence)
  assert ids == reference.ids
  assert ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.eos_id
  for word, word_positions in zip(sentence.split(), positions):
    pieces = ''.join(reference.tokens[p] for p in word_positions)
    assert pieces.replace('</w>', '') == word
  assert [p for word in positions for p in word] == list(
      range(1, len(ids) - 1))


def test_role_graph_spans_move_onto_pieces(clip_dir):
  tokenizer = tokenizers.load_clip_tokenizer(clip_dir)
  sentence = 'a zebra throws a ball'
  graph = [{'ROOT': {'role': 'ROOT', 'spans': [0, 1, 2, 3, 4]},
            'V': {'role': 'V', 'spans': [2]},
            'A0': {'role': 'ARG0', 'spans': [0, 1]},
            'A1': {'role': 'ARG1', 'spans': [3, 4]}},
           [['V', 'A0', 'ARG0'], ['V', 'A1', 'ARG1']]]
  _, positions = tokenizer.encode_words(sentence.split())
  out = role_graph.encode_caption(sentence, graph, tokenizer, max_words=20,
                                  num_verbs=2, num_nouns=3)
  assert out['length'] == 2 + sum(map(len, positions))
  np.testing.assert_array_equal(np.flatnonzero(out['verb_masks'][0]),
                                positions[2])
  np.testing.assert_array_equal(np.flatnonzero(out['noun_masks'][0]),
                                positions[0] + positions[1])
  np.testing.assert_array_equal(np.flatnonzero(out['noun_masks'][1]),
                                positions[3] + positions[4])


def test_tokenizer_of_another_vocabulary_is_refused(clip_dir, tmp_path):
  for name in ('config.json', 'tokenizer.json', 'model.safetensors'):
    shutil.copy(os.path.join(clip_dir, name), tmp_path)
  config = json.loads((tmp_path / 'config.json').read_text())
  config['text_config']['vocab_size'] += 1
  (tmp_path / 'config.json').write_text(json.dumps(config))
  with pytest.raises(clip_checkpoint.CheckpointError,
                     match='tokenizer.json has .* tokens but'):
    tokenizers.load_clip_tokenizer(str(tmp_path))


@pytest.fixture(scope='module')
def clip_data_dir(tmp_path_factory):
  """One folder for the tiny synthetic set in CLIP tokens: its models share
  the prepared data."""
  return str(tmp_path_factory.mktemp('clip_tfds'))


def _clip_config(name, data_dir, clip_dir):
  config = tiny_config(name, data_dir=data_dir)
  config.update(dict(text_encoder='clip', clip_dir=clip_dir,
                     max_words=clip_testing.TEXT_POSITIONS))
  return config


def _tower(params):
  found = []
  def visit(tree):
    for key, value in tree.items():
      if key == text_encoders.CLIP_TOWER:
        found.append(value)
      elif isinstance(value, dict):
        visit(value)
  visit(jax.device_get(params))
  assert len(found) == 1
  return found[0]


@pytest.mark.parametrize('name,clip_learning_rate', [
    ('hgr', 0.0), ('hcmi', 1e-3), ('vsepp', 1e-3)])
def test_models_train_on_the_pretrained_tower(clip_data_dir, clip_dir, name,
                                              clip_learning_rate):
  config = _clip_config(name, clip_data_dir, clip_dir)
  config.clip_learning_rate = clip_learning_rate
  builder = input_pipeline.prepare(input_pipeline.get_builder(config))
  assert builder.info.metadata['tokenizer']['kind'] == 'clip'
  model = models.create_model(config, len(input_pipeline.vocabulary(builder)))
  batch = next(iter(tfds.as_numpy(input_pipeline.train_dataset(
      builder, config, 0, config.batch_size,
      extra_features=model.extra_train_features()))))
  assert (batch['token_ids'][:, 0] == 0).all()  # Start of text.
  mesh = sharding.data_mesh()
  state = train.create_train_state(model, config, batch, mesh)
  _, pretrained = clip_checkpoint.load_tower(clip_dir, 'text')
  before = _tower(state.params)
  jax.tree.map(np.testing.assert_array_equal, before, pretrained)
  step = train.compile_train_step(model, mesh, state)
  state, metrics = step(state, sharding.global_batch(batch, mesh))
  assert np.isfinite(float(metrics['loss']))
  changed = jax.tree.leaves(jax.tree.map(
      lambda a, b: not np.array_equal(a, b), before, _tower(state.params)))
  # Frozen: not one weight moves; trained: the tower's weights move.
  assert any(changed) == bool(clip_learning_rate)


def test_frozen_tower_gets_no_gradient(clip_data_dir, clip_dir):
  config = _clip_config('hgr', clip_data_dir, clip_dir)
  config.clip_learning_rate = 0.0
  assert train.frozen_clip_tower(config)
  builder = input_pipeline.prepare(input_pipeline.get_builder(config))
  model = models.create_model(config, len(input_pipeline.vocabulary(builder)))
  batch = next(iter(tfds.as_numpy(input_pipeline.train_dataset(
      builder, config, 0, config.batch_size))))
  mesh = sharding.data_mesh()
  state = train.create_train_state(model, config, batch, mesh)
  # The train step's dropout key, so that its grad_norm can be compared.
  rng = jax.random.fold_in(state.rng, state.step)
  args = (state.params, state.batch_stats, batch, rng)
  grads, flops = {}, {}
  for frozen in (False, True):
    fn = jax.jit(lambda *a, frozen=frozen: train.loss_and_grads(
        *a, model=model, freeze_tower=frozen))
    flops[frozen] = fn.lower(*args).compile().cost_analysis()['flops']
    grads[frozen] = jax.device_get(fn(*args)[1])
  assert all((leaf == 0).all() for leaf in jax.tree.leaves(_tower(
      grads[True])))
  assert any((leaf != 0).any() for leaf in jax.tree.leaves(_tower(
      grads[False])))
  # The rest of the model gets the same gradient, and the tower's backward
  # pass is not computed at all.
  rest = lambda g: [leaf for path, leaf in
                    jax.tree_util.tree_leaves_with_path(g)
                    if not train._in_clip_tower(path)]  # pylint: disable=protected-access
  for frozen_leaf, leaf in zip(rest(grads[True]), rest(grads[False])):
    np.testing.assert_allclose(frozen_leaf, leaf, rtol=1e-5, atol=1e-7)
  assert flops[True] < 0.8 * flops[False], flops
  step = train.compile_train_step(model, mesh, state, freeze_tower=True)
  _, metrics = step(state, sharding.global_batch(batch, mesh))
  np.testing.assert_allclose(float(metrics['grad_norm']),
                             float(optax.global_norm(grads[True])), rtol=1e-4)
  assert float(metrics['grad_norm']) < float(optax.global_norm(grads[False]))


def test_sentencepiece_with_the_clip_tower_is_refused():
  config = tiny_config('hgr')
  config.update(dict(text_encoder='clip', tokenizer='sentencepiece'))
  with pytest.raises(ValueError, match="checkpoint's own BPE"):
    tokenizers.kind_of(config)
  config.tokenizer = 'word'
  assert tokenizers.kind_of(config) == 'clip'


def test_hanet_and_long_captions_are_refused(clip_dir):
  config = _clip_config('hanet', None, clip_dir)
  with pytest.raises(ValueError, match="HANet's concepts are whole words"):
    models.create_model(config, 100)
  config = _clip_config('hgr', None, clip_dir)
  config.max_words = clip_testing.TEXT_POSITIONS + 1
  with pytest.raises(ValueError, match='exceeds the 24 positions'):
    models.create_model(config, 100)
