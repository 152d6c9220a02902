"""tensorflow-datasets builder for the HGR/HANet feature and annotation release.

The release root (see `release_layout`) is the builder's manual directory.
Preparing checks the whole release first (`release_layout.check_split`), logs
a summary per split, then writes train/validation/test in the project's
example format (`example_format`), with tfds's progress bar. tfds writes into
a temporary folder and renames it only when every split is done, so a failure
leaves no half-written dataset behind.
"""

import dataclasses
import os

from absl import logging
import tensorflow_datasets as tfds

from data_pipelines import example_format
from data_pipelines import release_layout
from data_pipelines import tokenizers


@dataclasses.dataclass(kw_only=True)
class ReleaseConfig(tfds.core.BuilderConfig):
  """Which release, which features, and the sizes of the example format."""
  dataset: str = ''
  feature_names: tuple = ()
  feature_dim: int = 0
  max_words: int = 30
  num_verbs: int = 4
  num_nouns: int = 6
  tokenizer: str = 'word'
  sentencepiece_vocab_size: int = 0
  clip_dir: str = ''


def make_config(dataset, release_dir, feature_names, max_words, num_verbs,
                num_nouns, tokenizer='word', sentencepiece_vocab_size=0,
                clip_dir=''):
  """A builder config named after all of its settings.

  Reads the feature files' headers to find the feature size, so a release
  whose splits disagree is refused here. The release's absolute path is part
  of the name: two releases never share prepared data. `tokenizer` is 'word'
  (the release's word2int), 'sentencepiece' (a model of at most
  `sentencepiece_vocab_size` pieces trained on the training captions) or
  'clip' (the BPE of the CLIP checkpoint in `clip_dir`).
  """
  if not os.path.isdir(release_dir):
    raise release_layout.ReleaseError(
        f'The release folder {release_dir} does not exist: set '
        '--config.release_dir to the folder holding annotation/, '
        'public_split/ and ordered_feature/.')
  feature_names = tuple(feature_names)
  dim = release_layout.feature_dim(release_dir, feature_names)
  settings = dict(dataset=dataset, release=os.path.abspath(release_dir),
                  features=feature_names, max_words=max_words,
                  num_verbs=num_verbs, num_nouns=num_nouns)
  description, digest = example_format.describe_settings(
      settings, tokenizer, sentencepiece_vocab_size, clip_dir)
  return ReleaseConfig(
      name=f'{dataset}_d{dim}_{digest}',
      description=description, dataset=dataset,
      feature_names=feature_names, feature_dim=dim, max_words=max_words,
      num_verbs=num_verbs, num_nouns=num_nouns, tokenizer=tokenizer,
      sentencepiece_vocab_size=sentencepiece_vocab_size,
      clip_dir=clip_dir or '')


class ReleaseVideoText(tfds.core.GeneratorBasedBuilder):
  """Video features, captions and role graphs of an HGR/HANet release."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First version.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download the features and annotations of the dataset from the HGR
  authors (github.com/cshizhe/hgr_v2t, "Datasets") and point
  config.release_dir at the folder holding annotation/, public_split/ and
  ordered_feature/.
  """

  def _info(self):
    config = self.builder_config
    return self.dataset_info_from_configs(
        features=example_format.features(config.feature_dim, config.max_words,
                                         config.num_verbs, config.num_nouns),
        # Filled in while preparing; tfds stores it with the dataset.
        metadata=tokenizers.TokenizerMetadata(),
        description=__doc__,
    )

  def _split_generators(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    config = self.builder_config
    annotations = release_layout.load_annotations(root)
    names = {}
    for split in release_layout.SPLITS:
      names[split], summary = release_layout.check_split(
          root, split, config.feature_names, annotations)
      logging.info('%s %s', config.dataset, summary.describe(split))
      self.info.metadata[f'{split}_summary'] = dataclasses.asdict(summary)
    if config.tokenizer == 'sentencepiece':
      self.info.metadata.set_sentencepiece(tokenizers.train_sentencepiece(
          (c for name in names['train'] for c in annotations.captions[name]),
          config.sentencepiece_vocab_size))
    elif config.tokenizer == 'clip':
      self.info.metadata.set_clip(
          tokenizers.load_clip_tokenizer(config.clip_dir))
    else:
      self.info.metadata['word2int'] = annotations.word2int
    tokenizer = tokenizers.for_metadata(self.info.metadata)
    return {split: self._generate_examples(root, split, names[split],
                                           annotations, tokenizer)
            for split in release_layout.SPLITS}

  def _generate_examples(self, root, split, names, annotations, tokenizer):
    config = self.builder_config
    read_frames = release_layout.FrameReader(root, split, config.feature_names)
    try:
      for name in names:
        captions, graphs = zip(*(
            release_layout.find_graph(annotations.graphs, c)
            for c in annotations.captions[name]))
        try:
          example = example_format.make_example(
              name, read_frames(name), list(captions), list(graphs),
              tokenizer, config.max_words, config.num_verbs, config.num_nouns)
        except example_format.FeatureError as e:
          files = [release_layout.frame_features_path(root, feature, split)
                   for feature in config.feature_names]
          raise release_layout.ReleaseError(f'{e} Feature files: {files}.'
                                            ) from e
        yield name, example
    finally:
      read_frames.close()
