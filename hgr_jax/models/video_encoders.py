"""Video encoders: HGR's three matching spaces and the VSE++ mean pooling."""

import flax.linen as nn

from hgr_jax.models import initializers
from hgr_jax.models import layers


class MultiLevelVideoEncoder(nn.Module):
  """HGR video side: frames projected to event, action and entity spaces.

  The event vector is attention-pooled over valid frames of the event stream;
  the action and entity streams stay per frame for phrase-to-frame matching.
  """
  embed_size: int
  dropout: float

  @nn.compact
  def __call__(self, frames, frame_mask, train):
    """frames: (batch, frames, dim), frame_mask: (batch, frames) bool.

    Returns:
      dict with event (batch, embed), actions and entities
      (batch, frames, embed), and frame_mask.
    """
    def stream(name):
      projected = initializers.torch_dense(self.embed_size, frames.shape[-1],
                                           name=name)(frames)
      return nn.Dropout(self.dropout, deterministic=not train)(projected)

    events = stream('event')
    return {
        'event': layers.AttentionPool(name='event_pool')(events, frame_mask),
        'actions': stream('action'),
        'entities': stream('entity'),
        'frame_mask': frame_mask,
    }


class MeanPoolVideoEncoder(nn.Module):
  """VSE++ video side: mean of valid frame features, then a linear map."""
  embed_size: int
  dropout: float

  @nn.compact
  def __call__(self, frames, frame_mask, train):
    """frames: (batch, frames, dim), frame_mask: (batch, frames) -> {'event'}."""
    pooled = layers.masked_mean(frames, frame_mask)
    pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
    return {'event': initializers.torch_dense(
        self.embed_size, pooled.shape[-1], name='event')(pooled)}
