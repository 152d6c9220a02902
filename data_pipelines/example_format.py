"""The one on-disk example format shared by every dataset of the project.

One example is one video with all of its captions:

  video_id     Text
  frames       float32 (num_frames, feature_dim); all frames as released,
               frame selection to `max_frames` happens in the input pipeline
  num_frames   int32
  captions     Sequence of:
    text         Text, the caption as written
    token_ids    int32 (max_words,), EOS-padded token ids (words, or pieces
                 of the dataset's SentencePiece model; see `tokenizers`)
    length       int32, number of valid tokens
    verb_masks   bool (num_verbs, max_words), tokens of each verb node
    noun_masks   bool (num_nouns, max_words), tokens of each argument node
    node_roles   int32 (num_verbs + num_nouns,), index into role_graph.ROLES
    adjacency    float32 (nodes, nodes), nodes = 1 + num_verbs + num_nouns in
                 the order [sentence, verbs, nouns]; row-normalised, row i
                 holds the nodes that node i receives from

The spec is a tensorflow-datasets `FeaturesDict`, so every builder of the
project writes and reads TFRecords through the same code.
"""

import hashlib
import json

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import role_graph
from data_pipelines import tokenizers


def features(feature_dim, max_words, num_verbs, num_nouns):
  """The tfds feature spec of one video example."""
  num_nodes = 1 + num_verbs + num_nouns
  return tfds.features.FeaturesDict({
      'video_id': tfds.features.Text(),
      'frames': tfds.features.Tensor(shape=(None, feature_dim),
                                     dtype=np.float32),
      'num_frames': np.int32,
      'captions': tfds.features.Sequence({
          'text': tfds.features.Text(),
          'token_ids': tfds.features.Tensor(shape=(max_words,),
                                            dtype=np.int32),
          'length': np.int32,
          'verb_masks': tfds.features.Tensor(shape=(num_verbs, max_words),
                                             dtype=np.bool_),
          'noun_masks': tfds.features.Tensor(shape=(num_nouns, max_words),
                                             dtype=np.bool_),
          'node_roles': tfds.features.Tensor(shape=(num_verbs + num_nouns,),
                                             dtype=np.int32),
          'adjacency': tfds.features.Tensor(shape=(num_nodes, num_nodes),
                                            dtype=np.float32),
      }),
  })


class FeatureError(ValueError):
  """A video's features hold NaN or Inf."""


def check_finite_frames(video_id, frames):
  """Raises `FeatureError` naming the video if `frames` holds NaN or Inf:
  found when the dataset is prepared, not as a NaN loss hours into training.
  """
  bad = ~np.isfinite(frames)
  if bad.any():
    frame_indices = np.flatnonzero(bad.any(axis=-1))
    raise FeatureError(
        f'Video {video_id!r} has {int(bad.sum())} NaN or Inf feature values '
        f'(frames {frame_indices[:5].tolist()} of {len(frames)}): re-extract '
        'its features or remove it from the split, then prepare again.')


def make_example(video_id, frames, captions, graphs, tokenizer, max_words,
                 num_verbs, num_nouns):
  """Builds one example of the format above.

  Args:
    video_id: str.
    frames: (num_frames, feature_dim) float32.
    captions: list of str.
    graphs: list of role graphs in the HGR release format, one per caption.
    tokenizer: a word2int dict, or a tokeniser of `tokenizers` (see
      `role_graph.encode_caption`).
    max_words, num_verbs, num_nouns: the format's sizes (max_words counts
      tokens: words, or sub-word pieces).
  """
  encoded = []
  for text, graph in zip(captions, graphs, strict=True):
    caption = role_graph.encode_caption(text, graph, tokenizer, max_words,
                                        num_verbs, num_nouns)
    caption['text'] = text
    encoded.append(caption)
  frames = np.asarray(frames, np.float32)
  check_finite_frames(video_id, frames)
  return {
      'video_id': video_id,
      'frames': frames,
      'num_frames': np.int32(frames.shape[0]),
      'captions': encoded,
  }


def describe_settings(settings, tokenizer, sentencepiece_vocab_size,
                      clip_dir=None):
  """(description, digest) of a builder config's settings, for its name.

  The tokenizer enters the settings only when it is not the default, so
  word-level datasets keep the names they had before tokenizers existed.
  A CLIP tokenizer enters by its content (`clip_dir`'s tokenizer.json), so
  checkpoints with the same BPE share prepared data.
  """
  settings = dict(settings)
  kind = tokenizers.check_kind(tokenizer)
  if kind == 'sentencepiece':
    settings.update(tokenizer=tokenizer,
                    sentencepiece_vocab_size=sentencepiece_vocab_size)
  elif kind == 'clip':
    settings.update(tokenizer=tokenizer, clip_tokenizer_sha256=hashlib.sha256(
        tokenizers.load_clip_tokenizer(clip_dir).tokenizer_json.encode()
    ).hexdigest())
  description = json.dumps(settings, sort_keys=True)
  return description, hashlib.sha1(description.encode()).hexdigest()[:10]
