"""VSE++ hinge loss with the hardest negative (max violation), both directions."""

import jax
import jax.numpy as jnp


def hardest_negative_hinge(scores, excluded, margin):
  """Hinge loss on the hardest negative caption and the hardest negative video.

  As the official HGR `ContrastiveLoss(max_violation=True, direction='bi')`,
  averaged over the batch.

  Args:
    scores: (batch, batch); scores[i, j] is video i against caption j, and
      pairs on the diagonal are positives.
    excluded: (batch, batch) bool, True where (video i, caption j) is never a
      negative: the diagonal (the official code), or every pair of the same
      video.
    margin: hinge margin (0.2 in HGR).

  Returns:
    Scalar loss.
  """
  positives = jnp.diag(scores)
  # Video i against other captions (caption retrieval) ...
  caption_costs = jax.nn.relu(margin + scores - positives[:, None])
  # ... and caption j against other videos (video retrieval).
  video_costs = jax.nn.relu(margin + scores - positives[None, :])
  caption_costs = jnp.where(excluded, 0.0, caption_costs)
  video_costs = jnp.where(excluded, 0.0, video_costs)
  return jnp.mean(jnp.max(caption_costs, axis=1)) + jnp.mean(
      jnp.max(video_costs, axis=0))


def retrieval_loss(scores, same_video, margin, weights,
                   mask_same_video_negatives=False):
  """Weighted sum of the hinge loss over score levels.

  Args:
    scores: dict of (batch, batch) score matrices ('fused', 'global', ...).
    same_video: (batch, batch) bool, True where video i and caption j come
      from the same video (the diagonal included).
    margin: hinge margin.
    weights: dict level -> weight; levels with weight 0 or absent from
      `scores` are skipped (HGR trains on 'fused' alone by default).
    mask_same_video_negatives: False (the official code): another caption of
      the same video in the batch is a negative like any other. True: it is
      never one.

  Returns:
    (loss, dict of per-level losses).
  """
  if mask_same_video_negatives:
    excluded = same_video
  else:
    excluded = jnp.eye(same_video.shape[0], dtype=bool)
  per_level = {level: hardest_negative_hinge(scores[level], excluded, margin)
               for level, weight in weights.items()
               if weight and level in scores}
  total = sum(weights[level] * value for level, value in per_level.items())
  return total, per_level


def masked_binary_cross_entropy(probs, labels, mask, eps=1e-7):
  """HANet's concept loss: BCE summed over unmasked concepts, mean over batch.

  Each example's sum is divided by its number of unmasked concepts, as the
  official code does. Probabilities are clipped to [eps, 1 - eps] so that a
  saturated sigmoid gives a finite loss and gradient (PyTorch's BCELoss clamps
  the log at -100 instead).

  Args:
    probs: (batch, concepts) predicted probabilities.
    labels: (batch, concepts) bool or {0, 1}.
    mask: (batch, concepts) bool or {0, 1}; 0 leaves a concept out.

  Returns:
    Scalar loss.
  """
  probs = jnp.clip(probs, eps, 1.0 - eps)
  labels = labels.astype(probs.dtype)
  mask = mask.astype(probs.dtype)
  bce = -(labels * jnp.log(probs) + (1.0 - labels) * jnp.log1p(-probs))
  per_example = jnp.sum(mask * bce, -1) / jnp.maximum(jnp.sum(mask, -1), 1.0)
  return jnp.mean(per_example)
