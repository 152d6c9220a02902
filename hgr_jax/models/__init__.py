"""Retrieval models; `create_model` builds the one a config names.

A new model is one module here that registers its `DualEncoder` subclass
with `@registry.register('name')`, imported below, and a config section
`config.model_name = 'name'`, `config.model = ConfigDict(its fields)`.
"""

import flax

# Imported for their registration.
from hgr_jax.models import hanet  # noqa: F401
from hgr_jax.models import hgr  # noqa: F401
from hgr_jax.models import registry
from hgr_jax.models import vsepp  # noqa: F401
from hgr_jax.models.hanet import HANet
from hgr_jax.models.hgr import HGR
from hgr_jax.models.vsepp import VSEPP


def create_model(config, vocab_size, embedding_init=None):
  """`registry.get(config.model_name)(vocab_size, **config.model)`.

  Nested dicts of config.model (loss_weights) become FrozenDicts, so that
  the module stays hashable.
  """
  cls = registry.get(config.model_name)
  fields = flax.core.freeze(config.model.to_dict())
  if embedding_init is not None:
    fields = fields.copy({'embedding_init': embedding_init})
  return cls(vocab_size=vocab_size, **fields)
