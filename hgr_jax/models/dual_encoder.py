"""What every retrieval model shares: two encoders, scores and the loss."""

import flax.linen as nn

from hgr_jax import losses
from hgr_jax.models import search_hooks


class DualEncoder(nn.Module):
  """Encodes videos and captions separately, then scores every pair.

  Subclasses set `video_encoder` and `text_encoder` in `setup` and define
  `scores(video, text, matmul_dtype=None)`, returning a dict of (videos,
  captions) matrices with at least 'fused', the score used for ranking;
  `matmul_dtype` (e.g. bfloat16) is the operand type of its products over
  the embedding axis, accumulated in float32. Keeping the encoders apart
  lets evaluation encode each video and caption once.

  The model owns its loss: subclasses declare the fields `margin`,
  `loss_weights` and `mask_same_video_negatives` that the default `loss`
  (the hinge) reads, and models
  trained on more override `loss`, and `train_outputs` when the loss needs
  more than the encodings and scores.
  """

  @staticmethod
  def paper_config():
    """The experiment settings of the model's paper: a ConfigDict with
    `model` (the model's fields, `config.model`) and any top-level field
    the paper fixes (e.g. `batch_size`), each value with its source.
    `configs/base.py` starts every experiment from it."""
    raise NotImplementedError(
        'A registered model defines paper_config() (see docs/model_api.md).')

  @nn.nowrap
  def extra_train_features(self):
    """What the training batch needs beyond the standard fields.

    Returns:
      dict: names of `input_pipeline.EXTRA_TRAIN_FEATURES` -> their keyword
      arguments; the input pipeline adds those fields to training batches.
    """
    return {}

  @nn.nowrap
  def rerank(self, scores):
    """Evaluation: re-ranks the split's full score matrices (dict of
    (videos, captions) NumPy arrays) before the metrics; none by default."""
    return scores

  @nn.nowrap
  def search_hooks(self):
    """What `hgr_jax.search` needs beyond this interface (a
    `search_hooks.SearchHooks`); by default no global score, so search
    scores every video, and no alignments to explain."""
    return search_hooks.SearchHooks()

  def encode_video(self, frames, frame_mask, train=False):
    """frames: (videos, frames, dim), frame_mask: (videos, frames) -> dict."""
    return self.video_encoder(frames, frame_mask, train)

  def encode_text(self, text, train=False):
    """text: dict of caption arrays with leading (captions,) -> dict."""
    return self.text_encoder(text, train)

  def scores(self, video, text, matmul_dtype=None):
    raise NotImplementedError

  def train_outputs(self, batch, train=True):
    """What `loss` reads of a training batch of (video, caption) pairs.

    Returns:
      dict: video and text, the encoders' outputs, and scores, the dict of
      (batch, batch) score matrices.
    """
    video = self.encode_video(batch['frames'], batch['frame_mask'], train)
    text = self.encode_text(batch, train)
    return {'video': video, 'text': text, 'scores': self.scores(video, text)}

  def loss(self, outputs, batch):
    """The VSE++ hinge (hardest negatives) on the score levels weighted by
    `loss_weights`; with `mask_same_video_negatives`, captions of one video
    (same video_key) are never each other's negatives (the official code
    uses them).

    Args:
      outputs: from `train_outputs`.
      batch: the training batch; video_key (batch,) int.

    Returns:
      (total scalar loss, dict of named scalar terms for logging).
    """
    same_video = batch['video_key'][:, None] == batch['video_key'][None, :]
    return losses.retrieval_loss(outputs['scores'], same_video, self.margin,
                                 dict(self.loss_weights),
                                 self.mask_same_video_negatives)

  def train_loss(self, batch):
    """`loss` of `train_outputs` in training mode: what training applies.

    Returns:
      (total scalar loss, dict of named scalar terms).
    """
    return self.loss(self.train_outputs(batch, train=True), batch)

  def __call__(self, batch, train=False):
    """Scores of every video of `batch` against every caption of it."""
    return self.scores(
        self.encode_video(batch['frames'], batch['frame_mask'], train),
        self.encode_text(batch, train))
