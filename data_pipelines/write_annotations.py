r"""The annotation half of a release from captions and a split file.

  pip install -e '.[parse]'
  python -m data_pipelines.write_annotations --captions=captions.json \
      --splits=splits.json --out=RELEASE

captions.json is {video: [sentence, ...]}, splits.json {"train": [video,
...], "validation": [...], "test": [...]}. Writes, in the layout
`release_layout` reads:

  RELEASE/annotation/RET/ref_captions.json            the captions as given
  RELEASE/annotation/RET/sent2rolegraph.augment.json  role graphs of the
      normalised captions, by the project's parser (`caption_parser`)
  RELEASE/annotation/RET/word2int.json, int2word.npy  the words of the
      normalised training captions (`role_graph.build_word2int`)
  RELEASE/public_split/{trn,val,tst}_names.npy        the split file

Run it after `hgr_jax.extract_features`: a video of the split file
that the split's feature file lacks (it could not be decoded) is left out of
the split, with a warning naming it. Captions empty once normalised are
dropped.
With the frame features of `hgr_jax.extract_features` this is a
release that `--config.release_dir` trains on.
"""

import json
import os
import sys
from typing import Dict, List

from absl import app
from absl import flags
from absl import logging
import h5py
import numpy as np

from data_pipelines import caption_parser
from data_pipelines import caption_text
from data_pipelines import graph_summary
from data_pipelines import release_layout
from data_pipelines import role_graph

FLAGS = flags.FLAGS


def _define_flags():
  flags.DEFINE_string('captions', None, 'JSON file {video: [sentence, ...]}.')
  flags.DEFINE_string(
      'splits', None, 'JSON file {"train": [video, ...], "validation": '
      '[...], "test": [...]}.')
  flags.DEFINE_string('out', None, 'Release root to write into.')
  flags.DEFINE_string(
      'feature_name', 'clip', 'Feature folder under ordered_feature/SA/: '
      'videos its split files lack (failed extraction) are left out.')
  flags.mark_flags_as_required(['captions', 'splits', 'out'])


def read_captions(path) -> Dict[str, List[str]]:
  """{video: [sentence, ...]}, checked."""
  if not os.path.isfile(path):
    raise release_layout.ReleaseError(f'The captions file {path} does not '
                                      'exist.')
  captions = release_layout.load_json(path, 'captions file')
  if not isinstance(captions, dict) or not all(
      isinstance(c, list) and all(isinstance(s, str) for s in c)
      for c in captions.values()):
    raise release_layout.ReleaseError(
        f'{path} must map each video name to a list of sentences.')
  return captions


def with_features(splits, out, feature_name):
  """`splits` without the videos that the split's feature file (if there is
  one) lacks."""
  kept = {}
  for split, names in splits.items():
    path = release_layout.frame_features_path(out, feature_name, split)
    if not os.path.isfile(path):
      kept[split] = names
      continue
    with h5py.File(path, 'r') as features:
      kept[split] = [n for n in names
                     if release_layout.feature_key(n) in features]
    left_out = sorted(set(names) - set(kept[split]))
    if left_out:
      logging.warning('%d %s videos have no features in %s and are left '
                      'out: %s', len(left_out), split, path,
                      ', '.join(left_out))
  return kept


def write(captions: Dict[str, List[str]], splits: Dict[str, List[str]],
          out: str, feature_name: str = 'clip', nlp=None
          ) -> Dict[str, list]:
  """Writes the annotations and split files of a release under `out`.

  Args:
    captions: video -> sentences.
    splits: project split name -> video names (`release_layout.read_splits`).
    out: release root.
    feature_name: see `with_features`.
    nlp: a loaded spaCy pipeline; `caption_parser.load_pipeline()` if None.

  Returns:
    The role graphs written, by normalised sentence.

  Raises:
    release_layout.ReleaseError: a video of a split without a caption, or a
      split left without videos.
  """
  splits = with_features(splits, out, feature_name)
  empty = [split for split, names in splits.items() if not names]
  if empty:
    raise release_layout.ReleaseError(
        f'No video of the {empty[0]} split has features under '
        f'ordered_feature/SA/{feature_name}: extract them first.')
  captions = {name: [s for s in sentences if caption_text.normalise(s)]
              for name, sentences in captions.items()}
  uncaptioned = [name for names in splits.values() for name in names
                 if not any(s.strip() for s in captions.get(name, []))]
  if uncaptioned:
    raise release_layout.ReleaseError(
        f'{len(uncaptioned)} videos of the split file have no caption, e.g. '
        f'{uncaptioned[0]!r}: add captions or remove them from the splits.')
  normalised = {name: [caption_text.normalise(s) for s in sentences]
                for name, sentences in captions.items()}
  # A caption of several sentences gets the union of theirs, keyed by the
  # normalised caption.
  paragraphs, _ = caption_parser.caption_sentences(
      s for sentences in captions.values() for s in sentences)
  sentence_graphs = caption_parser.parse_captions(
      [s for parts in paragraphs.values() for s in parts], nlp)
  graphs = caption_parser.paragraph_graphs(paragraphs, sentence_graphs)
  word2int = role_graph.build_word2int(
      s for name in splits['train'] for s in normalised[name])
  int2word = sorted(word2int, key=word2int.get)
  for path, content in ((release_layout.captions_path(out), captions),
                        (release_layout.graphs_path(out), graphs),
                        (release_layout.word2int_path(out), word2int)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      json.dump(content, f)
  np.save(release_layout.int2word_path(out), np.array(int2word))
  for split, names in splits.items():
    path = release_layout.names_path(out, split)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.array(names))
  return graphs


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  try:
    graphs = write(read_captions(FLAGS.captions),
                   release_layout.read_splits(FLAGS.splits), FLAGS.out,
                   FLAGS.feature_name)
  except release_layout.ReleaseError as e:
    sys.exit(f'write_annotations: {e}')
  print(graph_summary.describe(graph_summary.summarise(graphs, 0)))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
