"""tf.data input: training pairs, and videos and captions for evaluation.

Examples on disk hold one video with all of its captions (see
`example_format`). Training iterates over (video, caption) pairs, like the
official HGR reader; evaluation encodes every video once and every caption
once, in the split's stored order.
"""

import dataclasses
import functools
import json
import os

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data_pipelines import concepts
from data_pipelines import frame_sampling
from data_pipelines import release_dataset
from data_pipelines import release_layout
from data_pipelines import synthetic
from data_pipelines import synthetic_dataset
from data_pipelines import tokenizers

CAPTION_KEYS = ('token_ids', 'length', 'verb_masks', 'noun_masks',
                'node_roles', 'adjacency')


def get_builder(config):
  """The tfds builder of `config.dataset`, with its data under config.data_dir.

  'synthetic' is the embedded dataset; any other name reads an HGR/HANet
  release from config.release_dir (see `release_layout`).
  """
  if config.dataset == 'synthetic':
    params = synthetic.SyntheticParams(**config.synthetic.to_dict())
    builder_config = synthetic_dataset.make_config(
        params, config.max_words, config.num_verbs, config.num_nouns,
        tokenizers.kind_of(config), config.sentencepiece_vocab_size,
        config.get('clip_dir'))
    return synthetic_dataset.SyntheticVideoText(config=builder_config,
                                                data_dir=config.data_dir)
  release_dir = config.get('release_dir')
  if not release_dir:
    raise release_layout.ReleaseError(
        f'config.dataset={config.dataset!r} reads the HGR/HANet feature and '
        'annotation release: set --config.release_dir to its root (the folder '
        'holding annotation/, public_split/ and ordered_feature/). Use '
        '--config=configs/synthetic.py for the embedded synthetic dataset.')
  builder_config = release_dataset.make_config(
      config.dataset, release_dir, config.feature_names, config.max_words,
      config.num_verbs, config.num_nouns, tokenizers.kind_of(config),
      config.sentencepiece_vocab_size, config.get('clip_dir'))
  return release_dataset.ReleaseVideoText(config=builder_config,
                                          data_dir=config.data_dir)


def prepare(builder, manual_dir=None):
  """Writes the builder's TFRecords and HANet's concept vocabulary unless
  they are already there.

  Args:
    builder: a builder of `get_builder`.
    manual_dir: the release root, for release datasets.
  """
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      try_download_gcs=False, manual_dir=manual_dir))
  concepts.prepare(builder)
  _write_caption_counts(builder)
  return builder


CAPTION_COUNTS_FILE = 'caption_counts.json'


def _caption_counts_path(builder):
  return os.path.join(builder.data_dir, CAPTION_COUNTS_FILE)


def _write_caption_counts(builder):
  """Stores every split's captions per video (stored order) next to the
  TFRecords unless they are there, so that steps per epoch need no read."""
  path = _caption_counts_path(builder)
  if tf.io.gfile.exists(path):
    return
  counts = {}
  for split in builder.info.splits:
    ds = _read(builder, split, frames=False).map(
        lambda ex: tf.shape(ex['captions']['length'])[0])
    counts[split] = [int(n) for n in tfds.as_numpy(ds)]
  temporary = f'{path}.tmp{os.getpid()}'
  with tf.io.gfile.GFile(temporary, 'w') as f:
    json.dump(counts, f)
  tf.io.gfile.rename(temporary, path, overwrite=True)


def vocabulary(builder):
  """The token -> id dict stored with the dataset (words, or pieces)."""
  return dict(builder.info.metadata['word2int'])


def tokenizer(builder):
  """The tokeniser the dataset's captions were encoded with.

  Encode new text (e.g. search queries) with it: with
  config.tokenizer='sentencepiece' it holds the model stored with the data.
  """
  return tokenizers.for_metadata(builder.info.metadata)


def select_frames(frames, max_frames):
  """Keeps at most `max_frames` frames, evenly spaced as the official reader.

  Indices are round(linspace(0, n - 1, max_frames)) when a video has more
  frames than `max_frames` (computed in float64 so that rounding matches
  NumPy's); shorter videos are zero-padded.

  Args:
    frames: (num_frames, dim) float32 tensor.
    max_frames: int.

  Returns:
    frames (max_frames, dim) and frame_mask (max_frames,) bool.
  """
  count = tf.shape(frames)[0]
  spaced = tf.cast(tf.round(tf.linspace(
      tf.constant(0.0, tf.float64), tf.cast(count - 1, tf.float64),
      max_frames)), tf.int32)
  indices = tf.cond(count > max_frames, lambda: spaced,
                    lambda: tf.range(count))
  return frame_sampling.gather_padded(frames, indices, max_frames)


def _video_features(example, max_frames):
  frames, frame_mask = select_frames(example['frames'], max_frames)
  return {'frames': frames, 'frame_mask': frame_mask,
          # Lets the loss tell two captions of one video apart from negatives.
          'video_key': tf.cast(tf.strings.to_hash_bucket_fast(
              example['video_id'], 2**31 - 1), tf.int32)}


def _read(builder, split, process_index=0, process_count=1, frames=True):
  """The examples of a host's share of the split in stored order; frames
  left undecoded if not needed.

  A host reads only its share: a contiguous range of the split (tfds's
  `split_for_jax_process`; the first `examples % process_count` hosts hold
  one example more), not every record before dropping the others'.
  """
  decoders = None if frames else {'frames': tfds.decode.SkipDecoding()}
  if process_count > 1:
    split = tfds.split_for_jax_process(split, process_index=process_index,
                                       process_count=process_count)
  return builder.as_dataset(split=split, shuffle_files=False,
                            decoders=decoders,
                            read_config=tfds.ReadConfig(add_tfds_id=False))


def _concept_labels(builder, num_verb_concepts, num_noun_concepts):
  """HANet's caption concept labels and masks (`concepts.caption_labels`)."""
  tables = concepts.load_tables(builder, num_verb_concepts, num_noun_concepts)

  def add_labels(example, video, captions):
    del example
    return video, {**captions, **concepts.caption_labels(
        captions, *tables, num_verb_concepts, num_noun_concepts)}
  return add_labels


def _frame_views(builder):
  """HCMI's two random frame views (`frame_sampling.two_views`): keeps all
  of the video's frames, which `train_dataset` samples anew every epoch."""
  del builder

  def keep_all_frames(example, video, captions):
    return {**video, ALL_FRAMES: example['frames']}, captions
  return keep_all_frames


# A video field holding all frames: `train_dataset` replaces it after the
# video shuffle by frames and frames_view2, two random segment samplings of
# them drawn from (seed, epoch, video).
ALL_FRAMES = 'all_frames'

# Training fields beyond the standard ones that a model can request with
# `DualEncoder.extra_train_features` (name -> keyword arguments). Each entry
# is make(builder, **kwargs) -> transform(example, video, captions) ->
# (video, captions), run once per stored video: `example` is the decoded
# example (all of its frames in example['frames']), `video` the fields of
# `_video_features` and `captions` the caption fields with a leading
# (captions,) axis. A second frame view, say, adds a key to `video`.
EXTRA_TRAIN_FEATURES = {
    'concept_labels': _concept_labels,
    'frame_views': _frame_views,
}


def extra_field_shapes(extra_features, frame_shape):
  """The fields `extra_features` add to a training batch, without data.

  Args:
    extra_features: `DualEncoder.extra_train_features()` of a model.
    frame_shape: (max_frames, feature_dim) of the batch's frames.

  Returns:
    {field: (shape without the batch axis, NumPy dtype)}.
  """
  shapes = {}
  for name, kwargs in extra_features.items():
    if name == 'concept_labels':
      for kind in ('verb', 'noun'):
        for field in ('labels', 'mask'):
          shapes[f'{kind}_concept_{field}'] = (
              (kwargs[f'num_{kind}_concepts'],), np.bool_)
    elif name == 'frame_views':
      shapes['frames_view2'] = (tuple(frame_shape), np.float32)
    else:
      raise ValueError(f'Unknown training feature {name!r}; add its fields '
                       'here and its transform to EXTRA_TRAIN_FEATURES.')
  return shapes


def _extra_transforms(builder, extra_features):
  unknown = set(extra_features) - set(EXTRA_TRAIN_FEATURES)
  if unknown:
    raise ValueError(
        f'The model requests unknown training features {sorted(unknown)}; '
        f'add them to input_pipeline.EXTRA_TRAIN_FEATURES (has '
        f'{sorted(EXTRA_TRAIN_FEATURES)}).')
  return [EXTRA_TRAIN_FEATURES[name](builder, **kwargs)
          for name, kwargs in extra_features.items()]


def _train_examples(builder, config, process_index, process_count,
                    extra_features):
  """This host's training videos as (video features, captions of the video),
  with the fields that `extra_features` add."""
  transforms = _extra_transforms(builder, extra_features or {})

  def video_and_captions(example):
    video = _video_features(example, config.max_frames)
    captions = {k: example['captions'][k] for k in CAPTION_KEYS}
    for transform in transforms:
      video, captions = transform(example, video, captions)
    return video, captions

  videos = _read(builder, 'train', process_index, process_count)
  return videos.map(video_and_captions, num_parallel_calls=tf.data.AUTOTUNE)


def _sample_views(video, captions, seed, max_frames):
  """Replaces a video's ALL_FRAMES by two random views of `max_frames`."""
  video = dict(video)
  video_seed = tf.stack([tf.constant(seed, tf.int64),
                         2 * tf.cast(video['video_key'], tf.int64)])
  video.update(frame_sampling.two_views(video.pop(ALL_FRAMES), max_frames,
                                        video_seed))
  return video, captions


def train_dataset(builder, config, epoch, batch_size, process_index=0,
                  process_count=1, extra_features=None):
  """One epoch of (video, caption) pair batches in 'video_buffer' order.

  Videos are shuffled, expanded to their pairs and the pairs shuffled in a
  buffer of config.pair_shuffle_buffer, so a batch holds more captions of one
  video than a global shuffle would (see `InMemoryPairs` for that).

  Args:
    builder: prepared tfds builder.
    config: experiment config (max_frames, seed, shuffle sizes).
    epoch: the epoch number; it seeds the shuffling, so a resumed run sees
      the same order as an uninterrupted one.
    batch_size: batch size of this host (global batch / process count).
    process_index, process_count: this host's slice of the videos.
    extra_features: the model's `extra_train_features()`: names of
      `EXTRA_TRAIN_FEATURES` -> their keyword arguments.

  Returns:
    tf.data.Dataset of dicts: frames (batch, max_frames, dim), frame_mask,
    video_key (batch,), the caption fields of `CAPTION_KEYS` and the fields
    that `extra_features` add (e.g. 'concept_labels': HANet's concept labels
    and masks of `concepts.caption_labels`; 'frame_views': HCMI's
    frames_view2, with frames then a random sampling too).
  """
  videos = _train_examples(builder, config, process_index, process_count,
                           extra_features)
  seed = config.seed * 100_003 + epoch
  videos = videos.shuffle(config.video_shuffle_buffer, seed=seed)
  if ALL_FRAMES in videos.element_spec[0]:
    videos = videos.map(functools.partial(_sample_views, seed=seed,
                                          max_frames=config.max_frames),
                        num_parallel_calls=tf.data.AUTOTUNE)

  def pairs(video, captions):
    return tf.data.Dataset.zip(
        tf.data.Dataset.from_tensors(video).repeat(),
        tf.data.Dataset.from_tensor_slices(captions)).map(
            lambda v, c: {**v, **c})

  ds = videos.flat_map(pairs).shuffle(config.pair_shuffle_buffer, seed=seed)
  return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _concatenate_batches(ds):
  """Concatenates a batched dataset's NumPy dicts along the first axis."""
  parts = list(tfds.as_numpy(ds))
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclasses.dataclass(frozen=True)
class InMemoryPairs:
  """A host's training pairs held in memory, batched in a global order.

  As the official HGR reader (every feature in memory, a DataLoader shuffling
  all (video, caption) pairs of the split each epoch). Frames are stored
  once per video, already cut to max_frames; a batch gathers its rows.

  Attributes:
    videos: frames (videos, max_frames, dim), frame_mask, video_key.
    captions: the caption fields (and concept labels) with a leading
      (pairs,) axis.
    pair_video: (pairs,) index into `videos` of each caption's video.
  """
  videos: dict
  captions: dict
  pair_video: np.ndarray

  @classmethod
  def load(cls, builder, config, process_index=0, process_count=1,
           extra_features=None):
    """Reads this host's slice of the training split.

    The split is read twice, once for the videos and once for the pairs, so
    that only the kept frames, not the stored ones, are ever held.
    """
    if 'frame_views' in (extra_features or {}):
      raise ValueError(
          "config.pair_order='global' holds each video's frames cut to "
          "max_frames, but the model's frame views sample from all frames "
          "every epoch: use --config.pair_order=video_buffer.")
    examples = lambda: _train_examples(builder, config, process_index,
                                       process_count, extra_features)
    videos = _concatenate_batches(examples().map(lambda v, c: v).batch(256))

    def pairs_of(index, example):
      _, captions = example
      count = tf.shape(captions['length'])[0]
      return tf.data.Dataset.from_tensor_slices(
          {**captions, 'pair_video': tf.fill([count], tf.cast(index,
                                                              tf.int32))})

    captions = _concatenate_batches(
        examples().enumerate().flat_map(pairs_of).batch(4096))
    pair_video = captions.pop('pair_video')
    pairs = cls(videos, captions, pair_video)
    logging.info('Training pairs in memory: %d videos, %d pairs, %.2f GB.',
                 len(videos['frames']), len(pair_video), pairs.nbytes / 1e9)
    return pairs

  @property
  def nbytes(self):
    arrays = [*self.videos.values(), *self.captions.values(), self.pair_video]
    return sum(a.nbytes for a in arrays)

  @property
  def num_pairs(self):
    return len(self.pair_video)

  def order(self, seed, epoch):
    """The epoch's permutation of all pairs, a function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(self.num_pairs)

  def batches(self, seed, epoch, batch_size, skip=0):
    """Yields the epoch's full batches of pairs, dicts as `train_dataset`'s,
    from batch `skip` on."""
    order = self.order(seed, epoch)
    for start in range(skip * batch_size, self.num_pairs - batch_size + 1,
                       batch_size):
      pairs = order[start:start + batch_size]
      videos = self.pair_video[pairs]
      yield {**{k: v[videos] for k, v in self.videos.items()},
             **{k: v[pairs] for k, v in self.captions.items()}}


def epoch_batches(builder, config, batch_size, process_index=0,
                  process_count=1, extra_features=None):
  """A function (epoch, skip) -> iterator of this host's NumPy training
  batches of `epoch` from batch `skip` on.

  config.pair_order 'global': every pair of the host's slice in a
  permutation seeded by (config.seed, epoch), features held in memory (the
  official reader's order). 'video_buffer': `train_dataset`, streamed.
  Batches hold the fields of `train_dataset` either way. The order is a
  function of (config.seed, epoch), so a run resumed at a batch sees the
  batches the uninterrupted run saw; 'global' starts at the batch at once,
  'video_buffer' reads and drops the first `skip` batches.
  """
  if config.pair_order == 'global':
    pairs = InMemoryPairs.load(builder, config, process_index, process_count,
                               extra_features)
    return lambda epoch, skip=0: pairs.batches(config.seed, epoch, batch_size,
                                               skip)
  if config.pair_order == 'video_buffer':
    return lambda epoch, skip=0: tfds.as_numpy(train_dataset(
        builder, config, epoch, batch_size, process_index, process_count,
        extra_features).skip(skip))
  raise ValueError(f"config.pair_order={config.pair_order!r}: use 'global' "
                   "or 'video_buffer'.")


def video_dataset(builder, split, config, batch_size):
  """Every video of `split` once, in stored order, in batches (last one short).

  Returns:
    tf.data.Dataset of dicts: frames (batch, max_frames, dim), frame_mask.
  """
  ds = _read(builder, split).map(
      lambda ex: {k: v for k, v in _video_features(ex, config.max_frames).items()
                  if k != 'video_key'},
      num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def caption_dataset(builder, split, batch_size):
  """Every caption of `split` once, with the stored index of its video.

  Returns:
    tf.data.Dataset of dicts: the fields of `CAPTION_KEYS` with a leading
    (batch,) axis, video_index (batch,) and text (batch,) bytes.
  """
  def captions_of(index, example):
    captions = {k: example['captions'][k] for k in CAPTION_KEYS + ('text',)}
    count = tf.shape(captions['length'])[0]
    captions['video_index'] = tf.fill([count], tf.cast(index, tf.int32))
    return tf.data.Dataset.from_tensor_slices(captions)

  ds = _read(builder, split, frames=False).enumerate().flat_map(captions_of)
  return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def video_ids(builder, split):
  """The ids of the split's videos in stored order (list of str)."""
  ds = _read(builder, split, frames=False).map(lambda ex: ex['video_id'])
  return [v.decode() for v in tfds.as_numpy(ds)]


def count_pairs(builder, split, process_index=0, process_count=1):
  """Number of (video, caption) pairs in a host's share of `split`, the one
  `_read` reads, from the counts `prepare` stored."""
  path = _caption_counts_path(builder)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'{path} is missing: prepare the dataset with '
                            'input_pipeline.prepare (hgr_jax.main does).')
  with tf.io.gfile.GFile(path) as f:
    counts = json.load(f)[split]
  share, extra = divmod(len(counts), process_count)
  start = process_index * share + min(process_index, extra)
  return sum(counts[start:start + share + (process_index < extra)])


def steps_per_epoch(builder, local_batch_size, process_count=1):
  """Training steps per epoch that every host can take.

  Hosts read different videos, so their pair counts differ; all must run the
  same number of steps or the collective train step would wait forever. Each
  host computes every host's count itself, so no communication is needed.
  """
  return min(count_pairs(builder, 'train', i, process_count)
             for i in range(process_count)) // local_batch_size
