"""Retrieval models; `create_model` builds the one a config names.

A new model is one module here that registers its `DualEncoder` subclass
with `@registry.register('name')`, imported below, and a config section
`config.model_name = 'name'`, `config.model = ConfigDict(its fields)`.
"""

import flax

from hgr_jax import clip_checkpoint
# Imported for their registration.
from hgr_jax.models import hanet  # noqa: F401
from hgr_jax.models import hcmi  # noqa: F401
from hgr_jax.models import hgr  # noqa: F401
from hgr_jax.models import registry
from hgr_jax.models import vsepp  # noqa: F401
from hgr_jax.models.hanet import HANet
from hgr_jax.models.hcmi import HCMI
from hgr_jax.models.hgr import HGR
from hgr_jax.models.vsepp import VSEPP


def create_model(config, vocab_size, embedding_init=None):
  """`registry.get(config.model_name)(vocab_size, **config.model)`.

  Nested dicts of config.model (loss_weights) become FrozenDicts, so that
  the module stays hashable. With config.text_encoder='clip' the model's
  text side reads the CLIP text tower of config.clip_dir (its sizes here,
  its weights in `train.create_train_state`).
  """
  cls = registry.get(config.model_name)
  fields = flax.core.freeze(config.model.to_dict())
  if embedding_init is not None:
    fields = fields.copy({'embedding_init': embedding_init})
  text_encoder = config.get('text_encoder', 'bigru')
  if text_encoder == 'clip':
    if 'clip_text' not in cls.__dataclass_fields__:
      raise ValueError(
          f'config.text_encoder=clip: {config.model_name} cannot use the '
          "CLIP text tower (HANet's concepts are whole words); use hgr, "
          'vsepp or hcmi, or --config.text_encoder=bigru.')
    sizes = clip_checkpoint.tower_sizes(config.get('clip_dir'), 'text')
    if config.max_words > sizes.positions:
      raise ValueError(
          f'config.max_words={config.max_words} exceeds the '
          f'{sizes.positions} positions of the CLIP text tower in '
          f'{config.clip_dir}: lower --config.max_words.')
    fields = fields.copy({'clip_text': sizes})
  elif text_encoder != 'bigru':
    raise ValueError(f'config.text_encoder={text_encoder!r}: expected bigru '
                     'or clip.')
  return cls(vocab_size=vocab_size, **fields)
