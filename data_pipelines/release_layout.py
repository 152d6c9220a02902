"""Reads and checks the feature and annotation release of the HGR authors.

The layout (Chen et al., CVPR 2020, github cshizhe/hgr_v2t; reused by HANet):

  annotation/RET/ref_captions.json            {video_name: [sentence, ...]}
  annotation/RET/sent2rolegraph.augment.json  {sentence: [nodes, edges]}
  annotation/RET/word2int.json                {word: id}
  annotation/RET/int2word.npy                 [word, ...]
  public_split/{trn,val,tst}_names.npy        video names of each split
  ordered_feature/SA/<feature>/{trn,val,tst}_ft.hdf5
      {video_name with '/' replaced by '_': (num_frames, dim) float32}
  ordered_feature/MP/<feature>/{trn,val,tst}_ft.npy
      (num_videos, dim) mean-pooled features in split order

The graphs are looked up by caption, and if a caption is not a key as it
is, by its normalised form (`caption_text.normalise`: lower-case, no
punctuation, the form the release and `parse_captions` write): a release
whose ref_captions.json keeps raw captions ("A Man Is Running.") finds the
graph of "a man is running", and the example then holds the normalised
caption, whose words the graph's spans index.

Every problem found is raised as a `ReleaseError` that names the file and
says how to fix it, before anything is written.
"""

import dataclasses
import json
import os
import pickle
from typing import Dict, List, Sequence, Tuple

import h5py
import numpy as np

from data_pipelines import caption_text
from data_pipelines import role_graph


# Split of the project -> file prefix of the release.
SPLITS = {'train': 'trn', 'validation': 'val', 'test': 'tst'}

_ANNOTATION_DIR = os.path.join('annotation', 'RET')


class ReleaseError(ValueError):
  """The release directory is missing something or holds bad data."""


def captions_path(root):
  return os.path.join(root, _ANNOTATION_DIR, 'ref_captions.json')


def graphs_path(root):
  return os.path.join(root, _ANNOTATION_DIR, 'sent2rolegraph.augment.json')


def word2int_path(root):
  return os.path.join(root, _ANNOTATION_DIR, 'word2int.json')


def int2word_path(root):
  return os.path.join(root, _ANNOTATION_DIR, 'int2word.npy')


def names_path(root, split):
  return os.path.join(root, 'public_split', f'{SPLITS[split]}_names.npy')


def frame_features_path(root, feature_name, split):
  return os.path.join(root, 'ordered_feature', 'SA', feature_name,
                      f'{SPLITS[split]}_ft.hdf5')


def pooled_features_path(root, feature_name, split):
  return os.path.join(root, 'ordered_feature', 'MP', feature_name,
                      f'{SPLITS[split]}_ft.npy')


def feature_key(video_name):
  """The HDF5 key of a video: the release replaces '/' by '_'."""
  return video_name.replace('/', '_')


def _require(path, what):
  if not os.path.exists(path):
    raise ReleaseError(
        f'Missing {what}: {path}. Point config.release_dir at the root of the '
        'HGR/HANet release (the folder holding annotation/, public_split/ and '
        'ordered_feature/), or write one with '
        '`python -m data_pipelines.export_release`.')


def load_json(path, what):
  _require(path, what)
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ReleaseError(
        f'{path} is not valid JSON ({e}). The file is corrupt or truncated: '
        'copy it again from the release.') from e


def load_names(root, split):
  """The video names of a split, as a list of str."""
  path = names_path(root, split)
  _require(path, f'{split} split names')
  try:
    # The release stores names as a NumPy string or object array; object
    # arrays need pickle, so only load files from a release you trust.
    names = np.load(path, allow_pickle=True)
  except (ValueError, OSError, EOFError, pickle.UnpicklingError) as e:
    raise ReleaseError(f'{path} is not a readable .npy file ({e}): copy it '
                       'again from the release.') from e
  names = [str(name) for name in np.asarray(names).reshape(-1)]
  if not names:
    raise ReleaseError(f'The {split} split is empty: {path} holds no video '
                       'names. Every split needs at least one video.')
  return names


def read_splits(path) -> Dict[str, List[str]]:
  """A split file: JSON {"train": [video, ...], "validation": [...],
  "test": [...]} -> the same dict, checked."""
  if not os.path.isfile(path):
    raise ReleaseError(f'The split file {path} does not exist.')
  splits = load_json(path, 'split file')
  if (not isinstance(splits, dict) or set(splits) != set(SPLITS) or
      not all(isinstance(names, list) and names and
              all(isinstance(n, str) for n in names)
              for names in splits.values())):
    raise ReleaseError(
        f'{path} must map each of {", ".join(SPLITS)} (and nothing else) to '
        'a non-empty list of video names.')
  return splits


def _open_hdf5(path):
  try:
    return h5py.File(path, 'r')
  except OSError as e:
    raise ReleaseError(f'{path} is not a readable HDF5 file ({e}): the file '
                       'is corrupt or truncated; copy it again from the '
                       'release.') from e


def feature_dim(root, feature_names: Sequence[str]) -> int:
  """Total feature size (features concatenated), checked across splits.

  Reads only HDF5 headers. Raises `ReleaseError` when a file is missing or
  empty, or when one feature has different sizes in different splits.
  """
  if not feature_names:
    raise ReleaseError('config.feature_names is empty: name at least one '
                       'folder of ordered_feature/SA/.')
  folders = os.path.join(root, 'ordered_feature', 'SA')
  absent = [n for n in feature_names
            if not os.path.isdir(os.path.join(folders, n))]
  if absent and os.path.isdir(folders):
    present = sorted(n for n in os.listdir(folders)
                     if os.path.isdir(os.path.join(folders, n)))
    example = present[0] if present else 'name'
    raise ReleaseError(
        f'No feature folder {absent[0]!r} in {folders}; it holds '
        f'{present or "no folders"}. Name the folders to read with '
        f'--config.feature_names="(\'{example}\',)" (several are '
        'concatenated).')
  total = 0
  for name in feature_names:
    dims = {}
    for split in SPLITS:
      path = frame_features_path(root, name, split)
      _require(path, f'{split} frame features')
      with _open_hdf5(path) as f:
        first = next(iter(f.keys()), None)
        if first is None:
          raise ReleaseError(f'{path} holds no videos: copy it again from '
                             'the release.')
        dims[split] = f[first].shape[-1]
    if len(set(dims.values())) > 1:
      raise ReleaseError(
          f'Feature {name!r} has different sizes in different splits '
          f'({dims}) under {os.path.join(root, "ordered_feature", "SA", name)}'
          '. All splits must hold the same features: re-extract or copy them '
          'again from one release.')
    total += next(iter(dims.values()))
  return total


@dataclasses.dataclass
class SplitSummary:
  videos: int = 0
  captions: int = 0
  sentences_without_nodes: int = 0
  words: int = 0
  unknown_words: int = 0

  @property
  def oov_rate(self):
    return self.unknown_words / max(self.words, 1)

  def describe(self, split):
    return (f'{split}: {self.videos} videos, {self.captions} captions, '
            f'{self.sentences_without_nodes} sentences without graph nodes, '
            f'out-of-vocabulary words {100 * self.oov_rate:.2f}%')


@dataclasses.dataclass
class Annotations:
  captions: Dict[str, List[str]]
  graphs: Dict[str, list]
  word2int: Dict[str, int]


def load_annotations(root) -> Annotations:
  word2int = load_json(word2int_path(root), 'vocabulary')
  if not isinstance(word2int, dict) or not all(
      isinstance(v, int) for v in word2int.values()):
    raise ReleaseError(f'{word2int_path(root)} must map words to int ids.')
  captions = load_json(captions_path(root), 'captions')
  if not isinstance(captions, dict):
    raise ReleaseError(f'{captions_path(root)} must map each video id to a '
                       'list of captions.')
  check_special_ids(word2int, captions, word2int_path(root))
  return Annotations(
      captions=captions,
      graphs=load_json(graphs_path(root), 'role graphs'),
      word2int=word2int)


def check_special_ids(word2int, captions, path):
  """Refuses a vocabulary that gives a caption word the id 0, 1 or 2.

  Those are BOS, EOS and UNK, and captions are padded with EOS: such a word
  would read as padding. The official reader uses only the ids, never their
  spelling, so whatever holds them ("<bos>", "<BOS>", "<s>", "</s>",
  "<pad>", "<start>", "<end>", ...) is fine as long as no caption uses it.

  Args:
    word2int: word -> id.
    captions: video -> captions, as in the release (written or normalised).
    path: the vocabulary file, for the message.
  """
  reserved = sorted((index, word) for word, index in word2int.items()
                    if index < len(role_graph.SPECIAL_TOKENS))
  if not reserved:
    return
  used = set()
  for video_captions in captions.values():
    for caption in video_captions:
      if isinstance(caption, str):
        used.update(caption.split())
        used.update(caption_text.normalise(caption).split())
  for index, word in reserved:
    if word in used:
      raise ReleaseError(
          f'{path} gives the caption word {word!r} the id {index}, which is '
          'reserved (0 BOS, 1 EOS, 2 UNK; EOS is also the padding), so it '
          'would read as padding. Number the caption words from '
          f'{len(role_graph.SPECIAL_TOKENS)} and give 0, 1, 2 to the special '
          'tokens (any spelling: <bos> or <BOS>, <s>, </s>, <pad> ...; '
          'int2word.npy likewise), or use --config.tokenizer=sentencepiece, '
          'which builds its own vocabulary.')


def find_graph(graphs, caption) -> Tuple[str, list]:
  """(the caption as its graph knows it, the graph), or (caption, None).

  The caption itself if it is a key, else its normalised form.
  """
  if caption in graphs:
    return caption, graphs[caption]
  normalised = caption_text.normalise(caption)
  return normalised, graphs.get(normalised)


def check_split(root, split, feature_names, annotations) -> Tuple[
    List[str], SplitSummary]:
  """Checks that every video of `split` can be read, before anything is written.

  Returns:
    The split's video names and its summary.
  """
  names = load_names(root, split)
  summary = SplitSummary(videos=len(names))
  if len(set(names)) < len(names):
    repeated = sorted({n for n in names if names.count(n) > 1})
    raise ReleaseError(f'{names_path(root, split)} lists videos more than '
                       f'once (first: {repeated[:3]}): remove the repeats.')
  missing = [n for n in names if n not in annotations.captions]
  if missing:
    raise ReleaseError(
        f'{len(missing)} {split} videos of {names_path(root, split)} have no '
        f'captions in {captions_path(root)} (first: {missing[:3]}). Add their '
        'captions or remove them from the split.')
  no_graph = []
  for name in names:
    for caption in annotations.captions[name]:
      summary.captions += 1
      sentence, graph = find_graph(annotations.graphs, caption)
      if graph is None:
        no_graph.append(caption)
        continue
      if not (isinstance(graph, list) and len(graph) == 2 and
              isinstance(graph[0], dict)):
        raise ReleaseError(
            f'The graph of {sentence!r} in {graphs_path(root)} is not '
            '[nodes, edges]: regenerate the file.')
      if len(graph[0]) <= 1:  # Only the ROOT node.
        summary.sentences_without_nodes += 1
      words = sentence.split()
      summary.words += len(words)
      summary.unknown_words += sum(w not in annotations.word2int
                                   for w in words)
  if no_graph:
    raise ReleaseError(
        f'{len(no_graph)} {split} captions have no entry in '
        f'{graphs_path(root)} (first: {no_graph[:3]}). Build role graphs for '
        'them (e.g. with the official semantic-role-labelling pipeline) and '
        'add them to the file.')

  frame_counts = None
  for feature in feature_names:
    path = frame_features_path(root, feature, split)
    _require(path, f'{split} frame features')
    with _open_hdf5(path) as f:
      absent = [n for n in names if feature_key(n) not in f]
      if absent:
        raise ReleaseError(
            f'{len(absent)} {split} videos are absent from {path} (first: '
            f'{absent[:3]}, looked up as {feature_key(absent[0])!r}). Use the '
            'feature file of the same release as public_split/.')
      shapes = {n: f[feature_key(n)].shape for n in names}
    dims = {shape[-1] for shape in shapes.values()}
    if len(dims) > 1 or any(len(shape) != 2 for shape in shapes.values()):
      odd = [n for n, shape in shapes.items()
             if len(shape) != 2 or shape[-1] != shapes[names[0]][-1]]
      raise ReleaseError(
          f'The videos of {path} do not all hold (num_frames, dim) features '
          f'of one size: {names[0]!r} is {shapes[names[0]]}, {odd[0]!r} is '
          f'{shapes[odd[0]]}. Re-extract or copy the file again.')
    empty = [n for n in names if shapes[n][0] == 0]
    if empty:
      raise ReleaseError(f'{len(empty)} videos of {path} have no frames '
                         f'(first: {empty[:3]}): remove them from '
                         f'{names_path(root, split)} or re-extract them.')
    counts = [shapes[n][0] for n in names]
    if frame_counts is not None and counts != frame_counts:
      bad = next(n for n, a, b in zip(names, counts, frame_counts) if a != b)
      raise ReleaseError(
          f'Video {bad!r} has a different number of frames in {path} than in '
          f'the features of {feature_names[0]!r}; features listed in '
          'config.feature_names are concatenated frame by frame and must '
          'have the same frames.')
    frame_counts = counts
  return names, summary


class FrameReader:
  """Reads a video's frames, concatenating the features of several files."""

  def __init__(self, root, split, feature_names):
    self._files = [_open_hdf5(frame_features_path(root, name, split))
                   for name in feature_names]

  def __call__(self, video_name):
    """(num_frames, total_dim) float32."""
    return np.concatenate(
        [np.asarray(f[feature_key(video_name)], np.float32)
         for f in self._files], axis=-1)

  def close(self):
    for f in self._files:
      f.close()

