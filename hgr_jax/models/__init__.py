"""Retrieval models; `create_model` builds the one a config names."""

from hgr_jax.models.hanet import HANet
from hgr_jax.models.hcmi import HCMI
from hgr_jax.models.hgr import HGR
from hgr_jax.models.vsepp import VSEPP


def create_model(config, vocab_size, embedding_init=None):
  """The flax module named by `config.model`: 'hgr', 'hanet', 'vsepp' or
  'hcmi'."""
  common = dict(vocab_size=vocab_size, word_dim=config.word_dim,
                hidden_size=config.hidden_size,
                text_dropout=config.text_dropout,
                video_dropout=config.video_dropout)
  if embedding_init is not None:
    common['embedding_init'] = embedding_init
  if config.model == 'hgr':
    return HGR(num_roles=config.num_roles, gcn_layers=config.gcn_layers,
               gcn_dropout=config.gcn_dropout,
               attention_sigma=config.attention_sigma, **common)
  if config.model == 'hanet':
    return HANet(num_roles=config.num_roles, gcn_layers=config.gcn_layers,
                 gcn_dropout=config.gcn_dropout,
                 attention_sigma=config.attention_sigma,
                 num_verb_concepts=config.num_verb_concepts,
                 num_noun_concepts=config.num_noun_concepts,
                 num_action_clips=config.num_action_clips,
                 num_entity_clips=config.num_entity_clips,
                 concept_bce_weight=config.concept_bce_weight, **common)
  if config.model == 'vsepp':
    return VSEPP(**common)
  if config.model == 'hcmi':
    return HCMI(**common, **config.hcmi.to_dict())
  raise ValueError(
      f"Unknown config.model={config.model!r}; expected 'hgr', 'hanet', "
      "'vsepp' or 'hcmi'.")
