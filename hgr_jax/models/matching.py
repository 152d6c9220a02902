"""Similarity functions between encoded videos and encoded captions.

Every function returns scores shaped (videos, captions). `matmul_dtype`
(e.g. bfloat16) sets the operand type of the products with a (dim) axis,
which accumulate in float32; norms and everything after stay float32.
"""

import jax
import jax.numpy as jnp

from hgr_jax.models import layers


def cosine_matrix(videos, captions, matmul_dtype=None):
  """videos: (videos, dim), captions: (captions, dim) -> (videos, captions)."""
  return layers.dot('vd,cd->vc', layers.l2_normalize(videos),
                    layers.l2_normalize(captions), matmul_dtype)


def _phrase_frame_attention(cosines, valid, sigma, axis):
  """HGR's attention of each phrase over the frames, from their cosines.

  Negative cosines are clipped to 0, the result is L2-normalised over valid
  frames and a softmax with temperature `sigma` runs over valid frames.

  Args:
    cosines: phrase-frame cosines, frames along `axis`.
    valid: bool, broadcastable to `cosines`, True at valid frames.
    sigma: softmax temperature (4 in HGR).
    axis: the frames axis.

  Returns:
    Attention weights shaped as `cosines`, 0 on padded frames.
  """
  clipped = jnp.where(valid, jax.nn.relu(cosines), 0.0)
  return layers.masked_softmax(
      sigma * layers.l2_normalize(clipped, axis=axis), valid, axis=axis)


def _mean_over_phrases(phrase_scores, phrase_mask):
  """(videos, captions, phrases), (captions, phrases) -> (videos, captions)."""
  mask = phrase_mask.astype(phrase_scores.dtype)[None]
  return jnp.sum(phrase_scores * mask, -1) / jnp.maximum(jnp.sum(mask, -1), 1.0)


def phrase_frame_scores_reference(frames, frame_mask, phrases, phrase_mask,
                                  sigma):
  """Phrase-to-frame matching exactly as the official code computes it.

  Materialises the attended frame vector of every (video, caption, phrase)
  triple: (videos, captions, phrases, dim) memory. Kept as the reference for
  `phrase_frame_scores`.

  Args:
    frames: (videos, frames, dim) per-frame embeddings.
    frame_mask: (videos, frames) bool.
    phrases: (captions, phrases, dim) phrase node embeddings.
    phrase_mask: (captions, phrases) bool.
    sigma: softmax temperature.

  Returns:
    (videos, captions): mean over valid phrases of the cosine between the
    phrase and its attended frame vector.
  """
  cosines = jnp.einsum('vfd,cpd->vcpf', layers.l2_normalize(frames),
                       layers.l2_normalize(phrases))
  weights = _phrase_frame_attention(cosines, frame_mask[:, None, None, :],
                                    sigma, axis=-1)
  attended = jnp.einsum('vcpf,vfd->vcpd', weights, frames)
  phrase_scores = jnp.einsum('vcpd,cpd->vcp', layers.l2_normalize(attended),
                             layers.l2_normalize(phrases))
  return _mean_over_phrases(phrase_scores, phrase_mask)


def phrase_frame_scores(frames, frame_mask, phrases, phrase_mask, sigma,
                        matmul_dtype=None):
  """Same scores as `phrase_frame_scores_reference` without attended vectors.

  With unit phrase p, frame norms n_f, frame cosines s_f and weights w_f, the
  attended vector a = sum_f w_f v_f has a.p = sum_f w_f n_f s_f and
  ||a||^2 = w^T G w where G is the video's (frames, frames) Gram matrix. So the
  only (dim)-sized work is the frame-phrase cosine product that the attention
  needs anyway.

  Shapes as in `phrase_frame_scores_reference`. Intermediates keep the
  frames axis second, (videos, frames, captions, phrases), as the product
  over dim leaves it, so the largest arrays are never transposed.
  """
  frame_norms = layers.safe_norm(frames)
  unit_frames = frames / frame_norms[..., None]
  cosines = layers.dot('vfd,cpd->vfcp', unit_frames,
                       layers.l2_normalize(phrases), matmul_dtype)
  weights = _phrase_frame_attention(cosines, frame_mask[:, :, None, None],
                                    sigma, axis=1)
  # The Gram matrix is per video, cheap, and kept float32 for the norms.
  gram = jnp.einsum('vfd,vgd->vfg', frames, frames)
  dot = jnp.sum(weights * cosines * frame_norms[:, :, None, None], axis=1)
  squared_norm = jnp.sum(
      weights * jnp.einsum('vfg,vgcp->vfcp', gram, weights), axis=1)
  attended_norm = jnp.sqrt(jnp.maximum(squared_norm, 1e-20))
  return _mean_over_phrases(dot / attended_norm, phrase_mask)


def phrase_scores_from_gram(codes, scale, gram, valid, phrases, phrase_mask,
                            sigma):
  """HGR's phrase-to-frame score of videos for one query, from the index.

  `matching.phrase_frame_scores` of the frames codes x scale, with the
  frames' Gram matrix read from the index instead of computed, and their
  norms its diagonal: the product of the codes with the phrases is the only
  (width)-sized work left, and the codes need no normalising pass.

  Args:
    codes: (videos, frames, width) float32; frame = codes x scale.
    scale: (videos, frames) float32.
    gram: (videos, frames, frames) Gram matrix of the frames.
    valid: (videos, frames) bool.
    phrases: (phrases, width) one query's phrase nodes.
    phrase_mask: (phrases,) bool.
    sigma: HGR's attention temperature.

  Returns:
    (videos,) mean over valid phrases of the cosine between the phrase and
    its attended frame vector.
  """
  # safe_norm's clamp (1e-10) on the norms, as the model's.
  norms = jnp.sqrt(jnp.maximum(jnp.diagonal(gram, axis1=1, axis2=2), 1e-20))
  cosines = jnp.einsum('vfd,pd->vfp', codes, layers.l2_normalize(phrases),
                       preferred_element_type=jnp.float32)
  cosines = cosines * (scale / norms)[..., None]
  clipped = jnp.where(valid[..., None], jax.nn.relu(cosines), 0.0)
  weights = layers.masked_softmax(
      sigma * layers.l2_normalize(clipped, axis=1), valid[..., None], axis=1)
  dot = jnp.sum(weights * cosines * norms[..., None], axis=1)
  squared_norm = jnp.sum(weights * jnp.einsum('vfg,vgp->vfp', gram, weights),
                         axis=1)
  scores = dot / jnp.sqrt(jnp.maximum(squared_norm, 1e-20))
  mask = phrase_mask.astype(scores.dtype)
  return jnp.sum(scores * mask, -1) / jnp.maximum(jnp.sum(mask), 1.0)


def hgr_scores(video, text, sigma, matmul_dtype=None):
  """HGR's three matching levels and their mean.

  Args:
    video: output of `MultiLevelVideoEncoder` for (videos,) inputs.
    text: output of `RoleGraphEncoder` for (captions,) inputs.
    sigma: phrase-to-frame softmax temperature.
    matmul_dtype: operand type of the products over dim (None: float32).

  Returns:
    dict of (videos, captions) scores: global, verb, noun and fused.
  """
  scores = {
      'global': cosine_matrix(video['event'], text['sentence'],
                              matmul_dtype),
      'verb': phrase_frame_scores(video['actions'], video['frame_mask'],
                                  text['verbs'], text['verb_mask'], sigma,
                                  matmul_dtype),
      'noun': phrase_frame_scores(video['entities'], video['frame_mask'],
                                  text['nouns'], text['noun_mask'], sigma,
                                  matmul_dtype),
  }
  scores['fused'] = (scores['global'] + scores['verb'] + scores['noun']) / 3
  return scores


def jaccard_matrix(videos, captions):
  """Soft Jaccard of concept probabilities: sum of minima / sum of maxima.

  Uses min(a, b) + max(a, b) = a + b and max(a, b) - min(a, b) = |a - b|, so
  one (videos, captions) reduction of |a - b| gives both sums.

  Args:
    videos: (videos, concepts) in [0, 1].
    captions: (captions, concepts) in [0, 1].

  Returns:
    (videos, captions) in [0, 1].
  """
  total = jnp.sum(videos, -1)[:, None] + jnp.sum(captions, -1)[None, :]
  distance = jnp.sum(jnp.abs(videos[:, None, :] - captions[None, :, :]), -1)
  return (total - distance) / jnp.maximum(total + distance, 1e-12)


def _best_match(cosines, mask, axis, softmax_scale):
  """Each token's best match along `axis` of `cosines`: the max over the
  valid tokens (softmax_scale None), or their cosines weighted by a softmax
  of softmax_scale x cosine (a smooth max that passes gradient to every
  token)."""
  if softmax_scale is None:
    # Below every cosine, so a padded token is never the best one.
    return jnp.max(jnp.where(mask, cosines, -2.0), axis=axis)
  weights = layers.masked_softmax(softmax_scale * cosines, mask, axis=axis)
  return jnp.sum(weights * cosines, axis=axis)


def token_wise_scores(video_tokens, video_mask, video_weights, text_tokens,
                      text_mask, text_weights, matmul_dtype=None,
                      softmax_scale=None):
  """Token-wise interaction (DRL, Wang et al., 2022) of every pair.

  Each word's best frame, weighted over words, and each frame's best word,
  weighted over frames, averaged. Only the (videos, frames, captions, words)
  cosines are formed, by one product of unit tokens, so tiles of pairs stay
  cheap; frames stay second, as the product leaves them.

  Args:
    video_tokens: (videos, frames, dim).
    video_mask: (videos, frames) bool, valid frames.
    video_weights: (videos, frames) token weights, 0 on padding.
    text_tokens: (captions, words, dim).
    text_mask: (captions, words) bool, valid words.
    text_weights: (captions, words) token weights, 0 on padding.
    matmul_dtype: operand type of the product over dim (None: float32).
    softmax_scale: None: the best match is the max cosine (DRL). A number:
      the cosines weighted by their softmax at this inverse temperature.

  Returns:
    (videos, captions) scores.
  """
  cosines = layers.dot('vfd,cwd->vfcw', layers.l2_normalize(video_tokens),
                       layers.l2_normalize(text_tokens), matmul_dtype)
  best_frame = _best_match(cosines, video_mask[:, :, None, None], 1,
                           softmax_scale)
  best_word = _best_match(cosines, text_mask[None, None], 3, softmax_scale)
  text_to_video = jnp.einsum('vcw,cw->vc', best_frame, text_weights)
  video_to_text = jnp.einsum('vfc,vf->vc', best_word, video_weights)
  return (text_to_video + video_to_text) / 2


def phrase_frame_attention(frames, frame_mask, phrases, sigma):
  """HGR's attention weights of every phrase over every video's frames.

  Args:
    frames: (videos, frames, dim); frame_mask: (videos, frames) bool.
    phrases: (captions, phrases, dim).
    sigma: softmax temperature.

  Returns:
    (videos, captions, phrases, frames) weights summing to 1 over valid
    frames: what each phrase attends to when it is matched.
  """
  cosines = jnp.einsum('vfd,cpd->vcpf', layers.l2_normalize(frames),
                       layers.l2_normalize(phrases))
  return _phrase_frame_attention(cosines, frame_mask[:, None, None, :],
                                 sigma, axis=-1)
