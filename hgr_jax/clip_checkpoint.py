"""Loads a CLIP checkpoint in the Hugging Face layout from a local folder.

  CLIP_DIR/config.json               text_config and vision_config sizes
  CLIP_DIR/model.safetensors         weights (read with NumPy, no torch)
  CLIP_DIR/tokenizer.json            the BPE tokenizer (see
                                     data_pipelines.tokenizers.ClipTokenizer)
  CLIP_DIR/preprocessor_config.json  optional: image_mean and image_std

Any CLIP checkpoint saved by `transformers` (`save_pretrained`) has this
layout, e.g. openai/clip-vit-base-patch32 or -patch16, whose text towers are
the same. Nothing is downloaded.
"""

import os
from typing import Dict, Mapping, Tuple

import flax
import jax
import numpy as np
from safetensors import numpy as safetensors_numpy

from data_pipelines import clip_files
from data_pipelines.clip_files import CheckpointError  # noqa: F401
from data_pipelines.clip_files import CONFIG_FILE  # noqa: F401
from data_pipelines.clip_files import PREPROCESSOR_FILE
from data_pipelines.clip_files import require_file
from data_pipelines.clip_files import TOKENIZER_FILE  # noqa: F401
from data_pipelines.clip_files import WEIGHTS_FILE
from hgr_jax.models import clip

# OpenAI CLIP's pixel statistics, the default of CLIPImageProcessor.
DEFAULT_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
DEFAULT_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)

# Tower -> (prefix of its keys, its projection's top-level key).
_PREFIXES = {'text': ('text_model.', 'text_projection'),
             'vision': ('vision_model.', 'visual_projection')}
_LEAF_NAMES = {'kernel': 'weight', 'scale': 'weight', 'embedding': 'weight',
               'bias': 'bias'}


def tower_sizes(clip_dir, tower) -> clip.TowerSizes:
  """The sizes of `tower` ('text' or 'vision') from CLIP_DIR/config.json."""
  path, config, section = clip_files.tower_config(clip_dir, tower)
  try:
    sizes = clip.TowerSizes(
        width=section['hidden_size'],
        mlp_dim=section['intermediate_size'],
        layers=section['num_hidden_layers'],
        heads=section['num_attention_heads'],
        projection_dim=config['projection_dim'],
        activation=section.get('hidden_act', 'quick_gelu'),
        layer_norm_eps=section.get('layer_norm_eps', 1e-5),
        **(dict(vocab_size=section['vocab_size'],
                positions=section['max_position_embeddings'])
           if tower == 'text' else
           dict(image_size=section['image_size'],
                patch_size=section['patch_size'])))
  except KeyError as e:
    raise CheckpointError(f'{path}: {tower}_config lacks {e}.') from e
  if sizes.activation not in clip.ACTIVATIONS:
    raise CheckpointError(
        f'{path}: hidden_act={sizes.activation!r} is not supported; expected '
        f'one of {sorted(clip.ACTIVATIONS)}.')
  return sizes


def image_statistics(clip_dir) -> Tuple[np.ndarray, np.ndarray]:
  """(mean, std), each (3,) float32, of CLIP_DIR/preprocessor_config.json,
  or OpenAI CLIP's when the file is absent."""
  path = os.path.join(clip_dir, PREPROCESSOR_FILE)
  config = clip_files.read_json(path) if os.path.isfile(path) else {}
  mean = config.get('image_mean', DEFAULT_IMAGE_MEAN)
  std = config.get('image_std', DEFAULT_IMAGE_STD)
  return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def checkpoint_key(tower, path: Tuple[str, ...]) -> str:
  """The safetensors key of a Flax parameter path of a tower module."""
  prefix, projection = _PREFIXES[tower]
  *modules, leaf = path
  if path == ('embeddings', 'class_embedding'):
    return prefix + 'embeddings.class_embedding'
  name = '.'.join(m.replace('layers_', 'layers.') for m in modules)
  name += '.' + _LEAF_NAMES[leaf]
  return name if modules[0] == projection else prefix + name


def _from_torch_layout(array, leaf):
  """A torch weight in the layout of the Flax parameter."""
  if leaf == 'kernel' and array.ndim == 2:  # Linear: (out, in).
    return array.T
  if leaf == 'kernel' and array.ndim == 4:  # Conv: (out, in, h, w).
    return array.transpose(2, 3, 1, 0)
  return array


def load_tower(clip_dir, tower) -> Tuple[clip.TowerSizes, Dict]:
  """Sizes and Flax params of the `tower` ('text' or 'vision') of CLIP_DIR.

  Raises:
    CheckpointError: a missing file, a missing key or one of another shape
      (the first, by name), or a key of the tower that our module lacks.
  """
  sizes = tower_sizes(clip_dir, tower)
  weights_path = require_file(clip_dir, WEIGHTS_FILE)
  module = (clip.TextTower if tower == 'text' else clip.VisionTower)(sizes)
  expected = flax.traverse_util.flatten_dict(jax.eval_shape(
      module.init, jax.random.PRNGKey(0), *example_inputs(sizes, tower))
                                             ['params'])
  try:
    weights = safetensors_numpy.load_file(weights_path)
  except Exception as e:  # safetensors raises its own untyped errors.
    raise CheckpointError(f'{weights_path} cannot be read as safetensors '
                          f'({e}).') from e
  params = {}
  for path, shape in expected.items():
    key = checkpoint_key(tower, path)
    if key not in weights:
      raise CheckpointError(f'{weights_path} lacks {key} (shape '
                            f'{shape.shape}): not a CLIP checkpoint of the '
                            f'sizes in {CONFIG_FILE}.')
    value = _from_torch_layout(weights[key], path[-1])
    if value.shape != shape.shape:
      raise CheckpointError(
          f'{weights_path}: {key} has shape {weights[key].shape}, but '
          f'{CONFIG_FILE} makes it {shape.shape} (in our layout): the '
          'weights and the config belong to different checkpoints.')
    params[path] = value.astype(np.float32)
  ours = {checkpoint_key(tower, path) for path in expected}
  prefix, projection = _PREFIXES[tower]
  for key in sorted(weights):
    if ((key.startswith(prefix) or key.startswith(projection + '.'))
        and key not in ours and not key.endswith('position_ids')):
      raise CheckpointError(f'{weights_path} holds {key}, which our CLIP '
                            f'{tower} tower does not have: another '
                            'architecture.')
  return sizes, flax.traverse_util.unflatten_dict(params)


def example_inputs(sizes: clip.TowerSizes, tower):
  """Zero inputs that initialise the tower (shapes only matter)."""
  if tower == 'text':
    return np.zeros((1, 2), np.int32), np.zeros((1,), np.int32)
  return (np.zeros((1, sizes.image_size, sizes.image_size, 3), np.float32),)


def replace_towers(params: Mapping, tower_name: str, tower_params: Mapping):
  """`params` with every subtree named `tower_name` replaced by
  `tower_params` (a model may hold the tower at any depth)."""
  def replace(tree):
    return {key: (tower_params if key == tower_name else
                  replace(value) if isinstance(value, Mapping) else value)
            for key, value in tree.items()}
  return replace(params)
