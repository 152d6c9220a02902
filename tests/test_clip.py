"""CLIP towers against the reference implementation (transformers, PyTorch),
and the checkpoint loader's errors."""

import json
import os

import numpy as np
import pytest
from safetensors import numpy as safetensors_numpy

from hgr_jax import clip_checkpoint
from hgr_jax.models import clip
from tests import clip_testing


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  clip_dir = str(tmp_path_factory.mktemp('clip'))
  return clip_dir, clip_testing.make_checkpoint(clip_dir)


def test_text_tower_matches_transformers(checkpoint):
  clip_dir, reference = checkpoint
  sizes, params = clip_checkpoint.load_tower(clip_dir, 'text')
  rng = np.random.default_rng(0)
  # Token ids above the special ones, end-of-text (1) at different places,
  # anything after it: the causal mask keeps it out of earlier tokens.
  token_ids = rng.integers(2, sizes.vocab_size, (3, 10)).astype(np.int32)
  eos_positions = np.array([9, 4, 1], np.int32)
  token_ids[np.arange(3), eos_positions] = 1
  states, embeddings = clip.TextTower(sizes).apply(
      {'params': params}, token_ids, eos_positions)
  want_states, want_embeddings = clip_testing.reference_text(reference,
                                                             token_ids)
  np.testing.assert_allclose(states, want_states, atol=1e-5)
  np.testing.assert_allclose(embeddings, want_embeddings, atol=1e-5)


def test_vision_tower_matches_transformers(checkpoint):
  clip_dir, reference = checkpoint
  sizes, params = clip_checkpoint.load_tower(clip_dir, 'vision')
  pixels = np.random.default_rng(1).normal(
      size=(2, sizes.image_size, sizes.image_size, 3)).astype(np.float32)
  embeddings = clip.VisionTower(sizes).apply({'params': params}, pixels)
  np.testing.assert_allclose(
      embeddings, clip_testing.reference_image(reference, pixels), atol=1e-5)


def test_sizes_come_from_config(checkpoint):
  sizes = clip_checkpoint.tower_sizes(checkpoint[0], 'text')
  assert (sizes.width, sizes.layers, sizes.heads, sizes.mlp_dim,
          sizes.projection_dim, sizes.positions) == (
              32, 2, 4, 37, 24, clip_testing.TEXT_POSITIONS)
  mean, std = clip_checkpoint.image_statistics(checkpoint[0])
  np.testing.assert_allclose(mean, [0.5, 0.4, 0.3])
  np.testing.assert_allclose(std, [0.2, 0.25, 0.3])


def _copy(clip_dir, tmp_path, weights=None, config=None):
  """A copy of the checkpoint folder with weights or config.json changed."""
  tmp_path.mkdir(exist_ok=True)
  for name in ('config.json', 'model.safetensors', 'tokenizer.json'):
    with open(os.path.join(clip_dir, name), 'rb') as f:
      (tmp_path / name).write_bytes(f.read())
  if weights is not None:
    safetensors_numpy.save_file(weights, str(tmp_path / 'model.safetensors'))
  if config is not None:
    (tmp_path / 'config.json').write_text(json.dumps(config))
  return str(tmp_path)


def test_missing_file_is_named(checkpoint, tmp_path):
  clip_dir = _copy(checkpoint[0], tmp_path)
  os.remove(os.path.join(clip_dir, 'model.safetensors'))
  with pytest.raises(clip_checkpoint.CheckpointError,
                     match='model.safetensors is missing'):
    clip_checkpoint.load_tower(clip_dir, 'text')


def test_missing_and_misshapen_keys_are_named(checkpoint, tmp_path):
  weights = safetensors_numpy.load_file(
      os.path.join(checkpoint[0], 'model.safetensors'))
  key = 'text_model.encoder.layers.1.mlp.fc2.bias'
  without = {k: v for k, v in weights.items() if k != key}
  with pytest.raises(clip_checkpoint.CheckpointError,
                     match=f'lacks {key} '):
    clip_checkpoint.load_tower(_copy(checkpoint[0], tmp_path / 'a',
                                     weights=without), 'text')
  key = 'text_model.encoder.layers.0.self_attn.q_proj.weight'
  misshapen = dict(weights, **{key: weights[key][:, :-1].copy()})
  with pytest.raises(clip_checkpoint.CheckpointError,
                     match=f'{key} has shape'):
    clip_checkpoint.load_tower(_copy(checkpoint[0], tmp_path / 'b',
                                     weights=misshapen), 'text')


def test_config_of_other_sizes_is_refused(checkpoint, tmp_path):
  with open(os.path.join(checkpoint[0], 'config.json')) as f:
    config = json.load(f)
  config['text_config']['num_hidden_layers'] = 3
  with pytest.raises(clip_checkpoint.CheckpointError,
                     match='lacks text_model.encoder.layers.2.'):
    clip_checkpoint.load_tower(_copy(checkpoint[0], tmp_path, config=config),
                               'text')
