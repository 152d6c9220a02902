"""What every retrieval model shares: a video and a text encoder, and scores."""

import flax.linen as nn


class DualEncoder(nn.Module):
  """Encodes videos and captions separately, then scores every pair.

  Subclasses set `video_encoder` and `text_encoder` in `setup` and define
  `scores(video, text, matmul_dtype=None)`, returning a dict of (videos,
  captions) matrices with at least 'fused', the score used for ranking;
  `matmul_dtype` (e.g. bfloat16) is the operand type of its products over
  the embedding axis, accumulated in float32. Keeping the encoders apart
  lets evaluation encode each video and caption once. Models trained with
  more than the hinge on their scores override `auxiliary_losses`.
  """

  def encode_video(self, frames, frame_mask, train=False):
    """frames: (videos, frames, dim), frame_mask: (videos, frames) -> dict."""
    return self.video_encoder(frames, frame_mask, train)

  def encode_text(self, text, train=False):
    """text: dict of caption arrays with leading (captions,) -> dict."""
    return self.text_encoder(text, train)

  def scores(self, video, text, matmul_dtype=None):
    raise NotImplementedError

  def auxiliary_losses(self, video, text, batch):
    """Weighted training losses besides the ranking hinge: name -> scalar."""
    del video, text, batch
    return {}

  @nn.nowrap
  def extra_train_fields(self):
    """Training-batch fields besides the usual ones that the model needs
    (names `input_pipeline.train_dataset` knows)."""
    return ()

  @nn.nowrap
  def rerank(self, scores):
    """Re-ranks the full score matrices of a split (dict of (videos,
    captions) arrays) before metrics; none by default."""
    return scores

  def train_outputs(self, batch, train=True):
    """(scores, auxiliary losses) of a training batch of pairs."""
    video = self.encode_video(batch['frames'], batch['frame_mask'], train)
    text = self.encode_text(batch, train)
    return self.scores(video, text), self.auxiliary_losses(video, text, batch)

  def __call__(self, batch, train=False):
    """Scores of every video of `batch` against every caption of it."""
    return self.scores(
        self.encode_video(batch['frames'], batch['frame_mask'], train),
        self.encode_text(batch, train))
