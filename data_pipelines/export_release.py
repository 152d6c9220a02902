r"""Writes any dataset of the project in the HGR/HANet release layout.

So that code written for the release, the official implementation included,
runs on the same data:

  python -m data_pipelines.export_release --config=configs/synthetic.py \
      --out=/tmp/synthetic_release

Role graphs are rebuilt from the stored masks, roles and adjacency (the
original graphs are not stored), so that reading the export back gives the
same arrays. The export is written into a temporary folder next to `--out`
and renamed when complete.
"""

import json
import os
import shutil
import tempfile

from absl import app
from absl import flags
from absl import logging
import h5py
from ml_collections import config_flags
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data_pipelines import input_pipeline
from data_pipelines import release_layout
from data_pipelines import role_graph


def graph_from_arrays(text, verb_masks, noun_masks, node_roles, adjacency):
  """A role graph in the release format that encodes back to these arrays.

  Args:
    text: the caption.
    verb_masks: bool (num_verbs, max_words).
    noun_masks: bool (num_nouns, max_words).
    node_roles: int (num_verbs + num_nouns,).
    adjacency: (nodes, nodes) in the order [sentence, verbs, nouns].

  Returns:
    [nodes, edges]: nodes 'ROOT', then '1', '2', ... for the filled verb
    slots followed by the filled argument slots; an edge [verb, argument,
    role] for each verb-argument link.
  """
  words = text.split()
  num_verbs = verb_masks.shape[0]
  nodes = {'ROOT': {'role': 'ROOT', 'spans': list(range(len(words))),
                    'words': words}}
  keys = {}  # Adjacency index -> node key.
  slots = [(1 + i, 'V', mask) for i, mask in enumerate(verb_masks)]
  slots += [(1 + num_verbs + i, role_graph.ROLES[node_roles[num_verbs + i]],
             mask) for i, mask in enumerate(noun_masks)]
  for index, role, mask in slots:
    spans = [int(i) for i in np.flatnonzero(mask)]
    if spans:
      keys[index] = str(len(keys) + 1)
      nodes[keys[index]] = {'role': role, 'spans': spans,
                            'words': [words[i] for i in spans]}
  edges = []
  for verb in range(1, 1 + num_verbs):
    for argument in range(1 + num_verbs, adjacency.shape[0]):
      if adjacency[argument, verb] > 0 and verb in keys and argument in keys:
        edges.append([keys[verb], keys[argument],
                      nodes[keys[argument]]['role']])
  return [nodes, edges]


def export(builder, out_dir, feature_name):
  """Writes the prepared `builder`'s dataset to `out_dir` in release layout.

  Video names are the stored video ids; splits keep the stored order.
  """
  if os.path.exists(out_dir):
    raise FileExistsError(f'{out_dir} already exists: choose a new --out or '
                          'remove it.')
  if builder.info.metadata.get('tokenizer', {}).get('kind', 'word') != 'word':
    # Its masks mark pieces, and the release layout has word spans.
    raise ValueError('Only datasets tokenised into words can be exported: '
                     'export with --config.tokenizer=word.')
  parent = os.path.dirname(os.path.abspath(out_dir))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.export_', dir=parent)
  try:
    _write(builder, tmp, feature_name)
    os.rename(tmp, out_dir)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp)


def _write(builder, root, feature_name):
  captions, graphs = {}, {}
  for split in release_layout.SPLITS:
    names, pooled = [], []
    path = release_layout.frame_features_path(root, feature_name, split)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, 'w') as frames_file:
      ds = builder.as_dataset(split=split, shuffle_files=False)
      for example in tfds.as_numpy(ds):
        name = example['video_id'].decode()
        frames = example['frames']
        names.append(name)
        frames_file[release_layout.feature_key(name)] = frames
        pooled.append(frames.mean(axis=0))
        texts = [t.decode() for t in example['captions']['text']]
        captions[name] = texts
        c = example['captions']
        for i, text in enumerate(texts):
          graphs[text] = graph_from_arrays(
              text, c['verb_masks'][i], c['noun_masks'][i],
              c['node_roles'][i], c['adjacency'][i])
    logging.info('%s: %d videos', split, len(names))
    names_file = release_layout.names_path(root, split)
    os.makedirs(os.path.dirname(names_file), exist_ok=True)
    np.save(names_file, np.array(names))
    pooled_file = release_layout.pooled_features_path(root, feature_name, split)
    os.makedirs(os.path.dirname(pooled_file), exist_ok=True)
    np.save(pooled_file, np.stack(pooled).astype(np.float32))

  os.makedirs(os.path.dirname(release_layout.captions_path(root)))
  word2int = input_pipeline.vocabulary(builder)
  int2word = [None] * len(word2int)
  for word, index in word2int.items():
    int2word[index] = word
  for path, content in ((release_layout.captions_path(root), captions),
                        (release_layout.graphs_path(root), graphs),
                        (release_layout.word2int_path(root), word2int)):
    with open(path, 'w') as f:
      json.dump(content, f)
  np.save(release_layout.int2word_path(root), np.array(int2word))


FLAGS = flags.FLAGS


def _define_flags():
  config_flags.DEFINE_config_file(
      'config', None, 'Config of the dataset to export, e.g. '
      'configs/synthetic.py.', lock_config=True)
  flags.DEFINE_string('out', None, 'Folder to create for the release layout.')
  flags.DEFINE_string('feature_name', 'features',
                      'Folder name under ordered_feature/SA and MP.')
  flags.mark_flags_as_required(['config', 'out'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  tf.config.set_visible_devices([], 'GPU')
  config = FLAGS.config
  builder = input_pipeline.prepare(input_pipeline.get_builder(config),
                                   manual_dir=config.get('release_dir'))
  export(builder, FLAGS.out, FLAGS.feature_name)
  print(f'Wrote {config.dataset} in the release layout to {FLAGS.out}.')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
