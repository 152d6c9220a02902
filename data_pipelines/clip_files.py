"""The files of a local CLIP checkpoint folder (Hugging Face layout), as far
as the data pipeline reads them: the tokenizer and the vocabulary size of
the text tower. The weights are `hgr_jax.clip_checkpoint`'s.

  CLIP_DIR/config.json               text_config and vision_config sizes
  CLIP_DIR/model.safetensors         weights
  CLIP_DIR/tokenizer.json            the BPE tokenizer
  CLIP_DIR/preprocessor_config.json  optional: image_mean and image_std
"""

import json
import os

CONFIG_FILE = 'config.json'
WEIGHTS_FILE = 'model.safetensors'
TOKENIZER_FILE = 'tokenizer.json'
PREPROCESSOR_FILE = 'preprocessor_config.json'


class CheckpointError(ValueError):
  """The CLIP folder lacks a file or does not match the towers."""


def require_file(clip_dir, name):
  """CLIP_DIR/name, or a one-line error naming the missing file."""
  if not clip_dir:
    raise CheckpointError('config.clip_dir is not set: point it at a local '
                          'CLIP checkpoint folder (Hugging Face layout).')
  path = os.path.join(clip_dir, name)
  if not os.path.isfile(path):
    raise CheckpointError(
        f'{path} is missing: the CLIP folder (config.clip_dir, --clip_dir) '
        f'must be a checkpoint in the Hugging Face layout ({CONFIG_FILE}, '
        f'{WEIGHTS_FILE}, {TOKENIZER_FILE}).')
  return path


def read_json(path):
  """The JSON file at `path`, or a one-line error naming it."""
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise CheckpointError(f'{path} is not valid JSON ({e}).') from e


def tower_config(clip_dir, tower):
  """(path, config.json, its `tower`_config section) of CLIP_DIR, `tower`
  'text' or 'vision'."""
  path = require_file(clip_dir, CONFIG_FILE)
  config = read_json(path)
  section = config.get(f'{tower}_config')
  if not isinstance(section, dict) or 'projection_dim' not in config:
    raise CheckpointError(f'{path} has no {tower}_config or projection_dim: '
                          'it is not the config of a CLIPModel.')
  return path, config, section


def text_vocab_size(clip_dir):
  """The vocabulary size of the text tower in CLIP_DIR/config.json."""
  path, _, section = tower_config(clip_dir, 'text')
  if 'vocab_size' not in section:
    raise CheckpointError(f"{path}: text_config lacks 'vocab_size'.")
  return section['vocab_size']
