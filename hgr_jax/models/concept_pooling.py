"""HANet's concept pooling: video/caption-level concepts and local clips.

Pure functions over per-position concept probabilities; every rule follows the
official HANet code (Wu et al., ACM MM 2021), vectorised over the batch.
"""

import jax
import jax.numpy as jnp


def topk_mean_pool(probs, mask, ratio=8):
  """Mean of each concept's k highest probabilities, k = ceil(valid / ratio).

  Args:
    probs: (batch, length, concepts) in [0, 1].
    mask: (batch, length) bool, valid frames or words.
    ratio: HANet uses k = ceil(valid / 8).

  Returns:
    (batch, concepts); zeros for a row without valid positions.
  """
  length = probs.shape[1]
  max_k = -(-length // ratio)
  k = -(-jnp.sum(mask, axis=1) // ratio)  # (batch,)
  # Probabilities are >= 0, so -1 ranks padding below every valid position.
  masked = jnp.where(mask[..., None], probs, -1.0)
  top, _ = jax.lax.top_k(jnp.swapaxes(masked, 1, 2), max_k)  # (b, c, max_k)
  keep = jnp.arange(max_k)[None, :] < k[:, None]  # (batch, max_k)
  total = jnp.sum(jnp.where(keep[:, None], top, 0.0), axis=-1)
  return total / jnp.maximum(k, 1)[:, None].astype(probs.dtype)


def _concept_frame_probs(frame_probs, concepts, mask):
  """(b, frames, all concepts), (b, n) ids -> (b, n, frames), padding at -1."""
  picked = jnp.take_along_axis(frame_probs, concepts[:, None, :], axis=2)
  return jnp.where(mask[:, None, :], jnp.swapaxes(picked, 1, 2), -1.0)


def action_clip_weights(frame_probs, concepts, mask, half_window=2):
  """Frame weights of HANet's action clips: a window around each best frame.

  For each selected concept, the clip averages the frames within
  `half_window` of the valid frame where the concept is most probable. As in
  the official code, the rule is all or nothing per video: if any of its
  windows would reach past the first or the last valid frame, every clip of
  that video is its best frame alone.

  Args:
    frame_probs: (batch, frames, concepts) per-frame probabilities.
    concepts: (batch, clips) int ids of the selected concepts.
    mask: (batch, frames) bool valid frames (a prefix of each row).
    half_window: 2 in HANet (5-frame windows).

  Returns:
    (batch, clips, frames) weights, each row summing to 1.
  """
  num_frames = frame_probs.shape[1]
  best = jnp.argmax(_concept_frame_probs(frame_probs, concepts, mask), -1)
  valid = jnp.sum(mask, axis=1)  # (batch,)
  fits = jnp.all((best >= half_window) &
                 (best + half_window < valid[:, None]), axis=1)
  offset = jnp.abs(jnp.arange(num_frames)[None, None, :] - best[..., None])
  window = (offset <= half_window) / (2.0 * half_window + 1.0)
  single = (offset == 0).astype(window.dtype)
  return jnp.where(fits[:, None, None], window, single)


def entity_clip_weights(frame_probs, concepts, mask, top_frames=3):
  """Frame weights of HANet's entity clips: each concept's best frames.

  Each clip averages the `top_frames` valid frames where its concept is most
  probable; a video with no more than `top_frames - 1` valid frames uses its
  best frame alone (the official rule).

  Args:
    frame_probs: (batch, frames, concepts).
    concepts: (batch, clips) int ids.
    mask: (batch, frames) bool.
    top_frames: 3 in HANet.

  Returns:
    (batch, clips, frames) weights, each row summing to 1.
  """
  num_frames = frame_probs.shape[1]
  probs = _concept_frame_probs(frame_probs, concepts, mask)
  _, top = jax.lax.top_k(probs, min(top_frames, num_frames))
  hot = jax.nn.one_hot(top, num_frames, dtype=frame_probs.dtype)
  enough = jnp.sum(mask, axis=1) >= top_frames
  return jnp.where(enough[:, None, None], jnp.mean(hot, axis=2), hot[:, :, 0])
