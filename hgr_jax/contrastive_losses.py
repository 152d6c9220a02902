"""HCMI's training losses (Jiang et al., 2022): multi-positive InfoNCE with
adaptive label denoising (ALD) and marginal sample enhancement (MSE).

Pure functions over (batch, batch) matrices of a batch of (video, caption)
pairs: entry [i, j] is video i against caption j, pairs on the diagonal.
"""

import jax
import jax.numpy as jnp

from hgr_jax import losses
from hgr_jax.models import layers


def multi_positive_info_nce(logits, positives):
  """Cross-entropy of each row's softmax against its positives, spread evenly.

  Args:
    logits: (rows, columns) scaled scores.
    positives: (rows, columns) bool; every row has at least one.

  Returns:
    Scalar: the mean over rows of -sum_j q_ij log softmax(logits_i)_j, with
    q_i uniform over row i's positives.
  """
  positives = positives.astype(logits.dtype)
  targets = positives / jnp.sum(positives, axis=1, keepdims=True)
  log_probs = jax.nn.log_softmax(logits, axis=1)
  return -jnp.mean(jnp.sum(targets * log_probs, axis=1))


def symmetric_info_nce(scores, positives, logit_scale):
  """Mean of the video->caption and caption->video multi-positive InfoNCE.

  Args:
    scores: (batch, batch), video i against caption j.
    positives: (batch, batch) bool, [a, b]: video b (hence caption b) is
      a positive of video a (hence of caption a). The same matrix serves
      both directions: row i of video->caption counts caption j when
      [i, j]; row j of caption->video counts video i when [j, i], i.e. the
      transposed logits against the untransposed positives.
    logit_scale: scalar multiplier of the scores (the learned inverse
      temperature).

  Returns:
    Scalar loss.
  """
  logits = logit_scale * scores
  video_to_caption = multi_positive_info_nce(logits, positives)
  caption_to_video = multi_positive_info_nce(logits.T, positives)
  return (video_to_caption + caption_to_video) / 2


def ald_positives(view1, view2):
  """HCMI's adaptive label denoising rule between the videos of a batch.

  Video j is a positive of video i when the mean cosine between their two
  views, (1/4) sum_{k,l} cos(V_i^k, V_j^l), is at least the cosine between
  the two views of video i. A video is always its own positive.

  Args:
    view1, view2: (batch, dim) video vectors of the two frame samplings.

  Returns:
    (batch, batch) bool, [i, j]: video j is a positive of video i.
  """
  view1, view2 = layers.l2_normalize(view1), layers.l2_normalize(view2)
  mean_view = (view1 + view2) / 2
  # (1/4) sum_{k,l} <a_k, b_l> = <(a_1 + a_2) / 2, (b_1 + b_2) / 2>.
  cross = mean_view @ mean_view.T
  own = jnp.sum(view1 * view2, axis=-1)
  return (cross >= own[:, None]) | jnp.eye(view1.shape[0], dtype=bool)


def marginal_sample_enhancement(scores, positives, theta):
  """HCMI's L_mse: hinge on the hardest negative caption of each video and
  the hardest negative video of each caption, halved.

  L_mse = (max(<V_i, T_j> - <V_i, T_i> + theta, 0)
           + max(<T_i, V_k> - <T_i, V_i> + theta, 0)) / 2, averaged over
  the batch, with j and k the hardest negatives.

  Args:
    scores: (batch, batch) video-sentence similarities.
    positives: (batch, batch) bool; never used as negatives.
    theta: the margin.

  Returns:
    Scalar loss.
  """
  return losses.hardest_negative_hinge(scores, positives, theta) / 2
