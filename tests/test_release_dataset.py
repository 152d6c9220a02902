"""The release-layout reader, its errors, and the export round trip."""

import json
import os

import h5py
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import caption_text
from data_pipelines import example_format
from data_pipelines import export_release
from data_pipelines import input_pipeline
from data_pipelines import release_dataset
from data_pipelines import release_layout
from data_pipelines import role_graph
from tests import conftest

DIM = 6
WORD2INT = {'<bos>': 0, '<eos>': 1, '<unk>': 2, 'a': 3, 'man': 4, 'cuts': 5,
            'tomato': 6, 'dog': 7, 'runs': 8, 'in': 9, 'park': 10,
            'and': 11, 'jumps': 12, 'the': 13, 'woman': 14, 'sings': 15}

SHORT = 'a man cuts a tomato'
# C-/R- roles map to the bare role; an unknown role becomes NOUN.
PREFIXED = 'the dog that runs in a park'
NO_VERB = 'a dog in a park'
NO_NODES = 'sings'
# Six verbs: only the first four are kept, with their edges.
MANY_VERBS = 'a man cuts and runs and jumps and sings and cuts and runs'
# 35 words: the node starting at word 32 is dropped, the one over word 30 cut.
LONG = ' '.join(['a', 'man', 'cuts', 'a', 'tomato'] * 7)

GRAPHS = {
    SHORT: [{'ROOT': {'role': 'ROOT', 'spans': [0, 1, 2, 3, 4]},
             '1': {'role': 'V', 'spans': [2]},
             '2': {'role': 'ARG0', 'spans': [0, 1]},
             '3': {'role': 'ARG1', 'spans': [3, 4]}},
            [['1', '2', 'ARG0'], ['1', '3', 'ARG1']]],
    PREFIXED: [{'ROOT': {'role': 'ROOT', 'spans': list(range(7))},
                '1': {'role': 'V', 'spans': [3]},
                '2': {'role': 'ARG0', 'spans': [0, 1]},
                '3': {'role': 'R-ARG0', 'spans': [2]},
                '4': {'role': 'C-ARGM-LOC', 'spans': [4, 5, 6]},
                '5': {'role': 'ARGM-GOL', 'spans': [6]}},
               [['1', '2', 'ARG0'], ['1', '3', 'R-ARG0'],
                ['1', '4', 'C-ARGM-LOC'], ['1', '5', 'ARGM-GOL']]],
    NO_VERB: [{'ROOT': {'role': 'ROOT', 'spans': list(range(5))},
               '1': {'role': 'NOUN', 'spans': [0, 1]},
               '2': {'role': 'NOUN', 'spans': [3, 4]}}, []],
    NO_NODES: [{'ROOT': {'role': 'ROOT', 'spans': [0]}}, []],
    MANY_VERBS: [{'ROOT': {'role': 'ROOT', 'spans': list(range(13))},
                  '1': {'role': 'ARG0', 'spans': [0, 1]},
                  '2': {'role': 'V', 'spans': [2]},
                  '3': {'role': 'V', 'spans': [4]},
                  '4': {'role': 'V', 'spans': [6]},
                  '5': {'role': 'V', 'spans': [8]},
                  '6': {'role': 'V', 'spans': [10]},
                  '7': {'role': 'V', 'spans': [12]}},
                 [['2', '1', 'ARG0'], ['5', '1', 'ARG0'],
                  ['6', '1', 'ARG0']]],
    LONG: [{'ROOT': {'role': 'ROOT', 'spans': list(range(35))},
            '1': {'role': 'V', 'spans': [2]},
            '2': {'role': 'ARG1', 'spans': [28, 29, 30, 31]},
            '3': {'role': 'V', 'spans': [32]},
            '4': {'role': 'ARG0', 'spans': [0, 1]}},
           [['1', '2', 'ARG1'], ['3', '2', 'ARG1'], ['1', '4', 'ARG0']]],
}

SPLITS = {
    'train': {'vid1': [SHORT, PREFIXED], 'folder/vid2': [NO_VERB, MANY_VERBS],
              'vid3': [LONG]},
    'validation': {'vid4': [SHORT, 'a zebra cuts a tomato']},
    'test': {'vid5': [NO_NODES, SHORT]},
}
GRAPHS['a zebra cuts a tomato'] = GRAPHS[SHORT]
FRAME_COUNTS = {'vid1': 5, 'folder/vid2': 33, 'vid3': 20, 'vid4': 1,
                'vid5': 21}


def _frames(name, dim=DIM):
  count = FRAME_COUNTS[name]
  seed = sum(map(ord, name))
  return np.random.RandomState(seed).normal(size=(count, dim)).astype(
      np.float32)


def write_release(root, splits=None, graphs=None, feature='resnet152.pth',
                  dims=None):
  """Writes the release layout by hand (no project code), for the tests."""
  splits = SPLITS if splits is None else splits
  graphs = GRAPHS if graphs is None else graphs
  os.makedirs(os.path.join(root, 'annotation', 'RET'))
  os.makedirs(os.path.join(root, 'public_split'))
  captions = {}
  for split, prefix in (('train', 'trn'), ('validation', 'val'),
                        ('test', 'tst')):
    videos = splits[split]
    captions.update(videos)
    np.save(os.path.join(root, 'public_split', f'{prefix}_names.npy'),
            np.array(list(videos), dtype=object), allow_pickle=True)
    folder = os.path.join(root, 'ordered_feature', 'SA', feature)
    os.makedirs(folder, exist_ok=True)
    dim = (dims or {}).get(split, DIM)
    with h5py.File(os.path.join(folder, f'{prefix}_ft.hdf5'), 'w') as f:
      for name in videos:
        f[name.replace('/', '_')] = _frames(name, dim)
  annotation = os.path.join(root, 'annotation', 'RET')
  for file_name, content in (('ref_captions.json', captions),
                             ('sent2rolegraph.augment.json', graphs),
                             ('word2int.json', WORD2INT)):
    with open(os.path.join(annotation, file_name), 'w') as f:
      json.dump(content, f)
  int2word = sorted(WORD2INT, key=WORD2INT.get)
  np.save(os.path.join(annotation, 'int2word.npy'), np.array(int2word))
  return root


def release_config(release_dir, data_dir):
  config = conftest.tiny_config('hgr', data_dir=data_dir)
  with config.unlocked():
    config.dataset = 'msrvtt'
    config.release_dir = release_dir
    config.feature_names = ('resnet152.pth',)
  return config


def prepare(release_dir, data_dir):
  config = release_config(release_dir, data_dir)
  return input_pipeline.prepare(input_pipeline.get_builder(config),
                                manual_dir=release_dir)


def _examples(builder, split):
  return {ex['video_id'].decode(): ex
          for ex in tfds.as_numpy(builder.as_dataset(split=split))}


def _adjacency(edges, size=11):
  """Row-normalised adjacency from (dst, src) pairs, worked out by hand."""
  a = np.zeros((size, size), np.float32)
  for dst, src in edges:
    a[dst, src] = 1
  sums = a.sum(1, keepdims=True)
  return np.divide(a, sums, out=np.zeros_like(a), where=sums > 0)


def _mask(rows, spans, width=30):
  m = np.zeros((rows, width), bool)
  for row, words in spans.items():
    m[row, words] = True
  return m


def test_builder_reads_every_field(tmp_path):
  release = write_release(str(tmp_path / 'release'))
  builder = prepare(release, str(tmp_path / 'tfds'))
  train = _examples(builder, 'train')
  assert set(train) == {'vid1', 'folder/vid2', 'vid3'}
  assert builder.info.splits['validation'].num_examples == 1
  # Frames are stored as released; selection happens in the pipeline.
  np.testing.assert_array_equal(train['folder/vid2']['frames'],
                                _frames('folder/vid2'))
  assert train['folder/vid2']['num_frames'] == 33

  c = train['vid1']['captions']
  assert [t.decode() for t in c['text']] == [SHORT, PREFIXED]
  np.testing.assert_array_equal(c['token_ids'][0][:6], [3, 4, 5, 3, 6, 1])
  assert c['length'].tolist() == [5, 7]
  # SHORT: verb "cuts"; ARG0 "a man", ARG1 "a tomato".
  np.testing.assert_array_equal(c['verb_masks'][0], _mask(4, {0: [2]}))
  np.testing.assert_array_equal(c['noun_masks'][0],
                                _mask(6, {0: [0, 1], 1: [3, 4]}))
  assert c['node_roles'][0].tolist() == [0, 0, 0, 0, 2, 1, 0, 0, 0, 0]
  np.testing.assert_allclose(c['adjacency'][0], _adjacency(
      [(1, 0), (5, 1), (1, 5), (6, 1), (1, 6)]))
  # PREFIXED: R-ARG0 -> ARG0 (2), C-ARGM-LOC -> ARGM-LOC (6), ARGM-GOL ->
  # NOUN (15).
  assert c['node_roles'][1].tolist() == [0, 0, 0, 0, 2, 2, 6, 15, 0, 0]
  # The verb receives from the sentence and its four arguments.
  np.testing.assert_allclose(c['adjacency'][1][1],
                             [0.2, 0, 0, 0, 0, 0.2, 0.2, 0.2, 0.2, 0, 0])

  c = train['folder/vid2']['captions']
  # NO_VERB: two NOUN nodes, no verb and no edge at all.
  assert not c['verb_masks'][0].any()
  np.testing.assert_array_equal(c['noun_masks'][0],
                                _mask(6, {0: [0, 1], 1: [3, 4]}))
  assert c['node_roles'][0].tolist() == [0] * 4 + [15, 15, 0, 0, 0, 0]
  assert not c['adjacency'][0].any()
  # MANY_VERBS: verbs 2, 3, 4, 5 fill the four slots; 6 and 7 are dropped
  # together with the edge 6 -> 1.
  np.testing.assert_array_equal(c['verb_masks'][1],
                                _mask(4, {0: [2], 1: [4], 2: [6], 3: [8]}))
  np.testing.assert_allclose(c['adjacency'][1], _adjacency(
      [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (1, 5), (5, 4), (4, 5)]))

  c = train['vid3']['captions']
  # LONG: 35 words cut to 30; ARG1 spans 28-31 keeps 28-29; the verb at 32 is
  # gone, and so is its edge.
  assert c['length'].tolist() == [30]
  np.testing.assert_array_equal(c['verb_masks'][0], _mask(4, {0: [2]}))
  np.testing.assert_array_equal(c['noun_masks'][0],
                                _mask(6, {0: [28, 29], 1: [0, 1]}))
  np.testing.assert_allclose(c['adjacency'][0], _adjacency(
      [(1, 0), (5, 1), (1, 5), (6, 1), (1, 6)]))

  validation = _examples(builder, 'validation')
  # "zebra" is not in the vocabulary: UNK.
  assert validation['vid4']['captions']['token_ids'][1][:5].tolist() == [
      3, 2, 5, 3, 6]
  assert input_pipeline.vocabulary(builder) == WORD2INT


def test_summary_counts(tmp_path):
  release = write_release(str(tmp_path / 'release'))
  builder = prepare(release, str(tmp_path / 'tfds'))
  # Read back from disk, as a later run sees it.
  reloaded = input_pipeline.get_builder(
      release_config(release, str(tmp_path / 'tfds')))
  test = reloaded.info.metadata['test_summary']
  # NO_NODES has only its ROOT; test has 1 + 5 words, all known.
  assert test == dict(videos=1, captions=2, sentences_without_nodes=1,
                      words=6, unknown_words=0)
  validation = builder.info.metadata['validation_summary']
  assert validation['unknown_words'] == 1 and validation['words'] == 10


def test_frame_selection_of_long_and_short_videos(tmp_path):
  release = write_release(str(tmp_path / 'release'))
  builder = prepare(release, str(tmp_path / 'tfds'))
  config = release_config(release, str(tmp_path / 'tfds'))
  with config.unlocked():
    config.max_frames = 20
  batches = list(tfds.as_numpy(input_pipeline.video_dataset(
      builder, 'train', config, batch_size=2)))
  frames = np.concatenate([b['frames'] for b in batches])
  masks = np.concatenate([b['frame_mask'] for b in batches])
  videos = dict(zip(input_pipeline.video_ids(builder, 'train'),
                    zip(frames, masks)))
  # 33 frames -> round(linspace(0, 32, 20)), worked out by hand.
  kept = [0, 2, 3, 5, 7, 8, 10, 12, 13, 15, 17, 19, 20, 22, 24, 25, 27, 29,
          30, 32]
  frames, mask = videos['folder/vid2']
  np.testing.assert_array_equal(frames, _frames('folder/vid2')[kept])
  assert mask.all()
  frames, mask = videos['vid1']  # 5 frames: kept, then zero padding.
  np.testing.assert_array_equal(frames[:5], _frames('vid1'))
  assert not frames[5:].any() and mask.tolist() == [True] * 5 + [False] * 15


def test_export_round_trip_equals_synthetic_builder(tiny_data_dir, tmp_path):
  config = conftest.tiny_config('hgr', data_dir=tiny_data_dir)
  synthetic = input_pipeline.prepare(input_pipeline.get_builder(config))
  release = str(tmp_path / 'release')
  export_release.export(synthetic, release, 'synthetic')
  with config.unlocked():
    config.dataset = 'roundtrip'
    config.release_dir = release
    config.feature_names = ('synthetic',)
    config.data_dir = str(tmp_path / 'tfds')
  from_release = input_pipeline.prepare(input_pipeline.get_builder(config),
                                        manual_dir=release)
  assert (input_pipeline.vocabulary(from_release) ==
          input_pipeline.vocabulary(synthetic))
  for split in ('train', 'validation', 'test'):
    expected, actual = _examples(synthetic, split), _examples(from_release,
                                                              split)
    assert set(actual) == set(expected)
    for name, example in expected.items():
      np.testing.assert_array_equal(actual[name]['frames'], example['frames'])
      for key, value in example['captions'].items():
        np.testing.assert_array_equal(actual[name]['captions'][key], value,
                                      err_msg=f'{split} {name} {key}')
  pooled = np.load(release_layout.pooled_features_path(release, 'synthetic',
                                                       'test'))
  first = input_pipeline.video_ids(synthetic, 'test')[0]
  np.testing.assert_allclose(pooled[0],
                             _examples(synthetic, 'test')[first][
                                 'frames'].mean(0), rtol=1e-6)


def _assert_nothing_written(data_dir):
  for dirpath, dirnames, filenames in os.walk(data_dir):
    assert not filenames, (dirpath, filenames)
    assert not any('incomplete' in d for d in dirnames), dirnames


def _corrupt(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize('breakage, message', [
    (lambda r: os.remove(os.path.join(r, 'annotation', 'RET',
                                      'ref_captions.json')),
     'Missing captions: .*ref_captions.json'),
    (lambda r: os.remove(os.path.join(r, 'public_split', 'tst_names.npy')),
     'Missing test split names: .*tst_names.npy'),
    (lambda r: os.remove(os.path.join(r, 'ordered_feature', 'SA',
                                      'resnet152.pth', 'val_ft.hdf5')),
     'Missing validation frame features: .*val_ft.hdf5'),
    (lambda r: _corrupt(os.path.join(r, 'annotation', 'RET',
                                     'sent2rolegraph.augment.json')),
     'sent2rolegraph.augment.json is not valid JSON'),
    (lambda r: _corrupt(os.path.join(r, 'ordered_feature', 'SA',
                                     'resnet152.pth', 'trn_ft.hdf5')),
     'trn_ft.hdf5 is not a readable HDF5 file'),
    (lambda r: _corrupt(os.path.join(r, 'public_split', 'trn_names.npy')),
     'trn_names.npy is not a readable .npy file'),
    (lambda r: np.save(os.path.join(r, 'public_split', 'val_names.npy'),
                       np.array([], dtype=object), allow_pickle=True),
     'The validation split is empty: .*val_names.npy'),
])
def test_broken_release_is_refused_with_the_file_named(tmp_path, breakage,
                                                       message):
  release = write_release(str(tmp_path / 'release'))
  breakage(release)
  with pytest.raises(release_layout.ReleaseError, match=message):
    prepare(release, str(tmp_path / 'tfds'))
  _assert_nothing_written(str(tmp_path / 'tfds'))


def test_missing_release_folder(tmp_path):
  with pytest.raises(release_layout.ReleaseError,
                     match='release folder .*nowhere does not exist'):
    prepare(str(tmp_path / 'nowhere'), str(tmp_path / 'tfds'))


def test_video_absent_from_feature_file(tmp_path):
  splits = {**SPLITS, 'test': {'vid5': [SHORT]}}
  release = write_release(str(tmp_path / 'release'), splits=splits)
  names = os.path.join(release, 'public_split', 'tst_names.npy')
  np.save(names, np.array(['vid5', 'ghost/video'], dtype=object),
          allow_pickle=True)
  captions = os.path.join(release, 'annotation', 'RET', 'ref_captions.json')
  with open(captions) as f:
    content = json.load(f)
  content['ghost/video'] = [SHORT]
  with open(captions, 'w') as f:
    json.dump(content, f)
  with pytest.raises(release_layout.ReleaseError,
                     match=r"1 test videos are absent from .*tst_ft.hdf5 "
                     r".*'ghost/video'.*looked up as 'ghost_video'"):
    prepare(release, str(tmp_path / 'tfds'))


def test_feature_sizes_differ_between_splits(tmp_path):
  release = write_release(str(tmp_path / 'release'), dims={'test': DIM + 2})
  with pytest.raises(release_layout.ReleaseError,
                     match="'resnet152.pth' has different sizes in different "
                     r"splits \(\{'train': 6, 'validation': 6, 'test': 8\}\)"):
    prepare(release, str(tmp_path / 'tfds'))


def test_feature_sizes_differ_between_videos_of_a_file(tmp_path):
  release = write_release(str(tmp_path / 'release'))
  path = os.path.join(release, 'ordered_feature', 'SA', 'resnet152.pth',
                      'trn_ft.hdf5')
  with h5py.File(path, 'a') as f:
    del f['vid3']
    f['vid3'] = np.zeros((4, DIM + 1), np.float32)
  with pytest.raises(release_layout.ReleaseError,
                     match=r"trn_ft.hdf5 do not all hold .* 'vid3' is "
                     r"\(4, 7\)"):
    prepare(release, str(tmp_path / 'tfds'))


def test_caption_without_graph(tmp_path):
  graphs = {k: v for k, v in GRAPHS.items() if k != LONG}
  release = write_release(str(tmp_path / 'release'), graphs=graphs)
  with pytest.raises(release_layout.ReleaseError,
                     match='1 train captions have no entry in '
                     '.*sent2rolegraph.augment.json'):
    prepare(release, str(tmp_path / 'tfds'))
  _assert_nothing_written(str(tmp_path / 'tfds'))


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
  release = write_release(str(tmp_path / 'release'))
  calls = []
  read = release_layout.FrameReader.__call__

  def failing_read(self, name):
    calls.append(name)
    if len(calls) == 4:  # After the first split is written.
      raise OSError('disk went away')
    return read(self, name)

  monkeypatch.setattr(release_layout.FrameReader, '__call__', failing_read)
  with pytest.raises(OSError, match='disk went away'):
    prepare(release, str(tmp_path / 'tfds'))
  _assert_nothing_written(str(tmp_path / 'tfds'))
  monkeypatch.undo()
  builder = prepare(release, str(tmp_path / 'tfds'))
  assert builder.info.splits['train'].num_examples == 3


def test_release_dataset_needs_release_dir(tmp_path):
  config = release_config(None, str(tmp_path))
  with pytest.raises(release_layout.ReleaseError,
                     match='set --config.release_dir'):
    input_pipeline.get_builder(config)


def test_graph_from_arrays_encodes_back():
  for sentence, graph in GRAPHS.items():
    encoded = role_graph.encode_graph(graph, 30, 4, 6)
    rebuilt = export_release.graph_from_arrays(sentence, **encoded)
    again = role_graph.encode_graph(rebuilt, 30, 4, 6)
    for key, value in encoded.items():
      np.testing.assert_array_equal(again[key], value, err_msg=sentence)


def test_release_config_name_depends_on_settings(tmp_path):
  release = write_release(str(tmp_path / 'release'))
  a = release_dataset.make_config('msrvtt', release, ('resnet152.pth',), 30,
                                  4, 6)
  b = release_dataset.make_config('msrvtt', release, ('resnet152.pth',), 20,
                                  4, 6)
  assert a.name != b.name and a.feature_dim == DIM


def test_raw_captions_find_the_graphs_of_their_normalised_form(tmp_path):
  # ref_captions.json with raw captions, graphs keyed as the release (and
  # parse_captions) write them: the example holds the normalised caption.
  raw = 'A Man Cuts, a TOMATO!'
  assert caption_text.normalise(raw) == SHORT
  splits = dict(SPLITS, train={'vid1': [raw, PREFIXED],
                               'folder/vid2': [NO_VERB, MANY_VERBS],
                               'vid3': [LONG]})
  release = write_release(str(tmp_path / 'release'), splits=splits)
  train = _examples(prepare(release, str(tmp_path / 'tfds')), 'train')
  c = train['vid1']['captions']
  assert [t.decode() for t in c['text']] == [SHORT, PREFIXED]
  np.testing.assert_array_equal(c['token_ids'][0][:6], [3, 4, 5, 3, 6, 1])
  np.testing.assert_array_equal(c['verb_masks'][0], _mask(4, {0: [2]}))


def test_find_graph_prefers_the_caption_as_written():
  graphs = {'A Dog': ['as written'], 'a dog': ['normalised']}
  assert release_layout.find_graph(graphs, 'A Dog') == ('A Dog',
                                                        ['as written'])
  assert release_layout.find_graph(graphs, 'A DOG.') == ('a dog',
                                                         ['normalised'])
  assert release_layout.find_graph(graphs, 'a cat') == ('a cat', None)


def test_nan_features_are_refused_naming_the_video(tmp_path):
  release = write_release(str(tmp_path / 'release'))
  path = os.path.join(release, 'ordered_feature', 'SA', 'resnet152.pth',
                      'trn_ft.hdf5')
  with h5py.File(path, 'a') as f:
    frames = f['vid3'][...]
    frames[4, 1] = np.inf
    frames[7, 0] = np.nan
    f['vid3'][...] = frames
  with pytest.raises(release_layout.ReleaseError,
                     match=r"Video 'vid3' has 2 NaN or Inf feature values "
                     r'\(frames \[4, 7\] of 20\).*trn_ft.hdf5'):
    prepare(release, str(tmp_path / 'tfds'))
  _assert_nothing_written(str(tmp_path / 'tfds'))


def test_make_example_refuses_nan_features():
  frames = np.zeros((3, DIM), np.float32)
  frames[1, 2] = np.nan
  with pytest.raises(example_format.FeatureError, match="Video 'v' has 1 NaN"):
    example_format.make_example('v', frames, [SHORT], [GRAPHS[SHORT]],
                                WORD2INT, 30, 4, 6)


def test_feature_folder_of_another_name_lists_the_folders(tmp_path):
  release = write_release(str(tmp_path / 'release'), feature='resnet152')
  with pytest.raises(release_layout.ReleaseError,
                     match=r"No feature folder 'resnet152.pth' in .*SA; it "
                     r"holds \['resnet152'\].*--config.feature_names="
                     r"\"\('resnet152',\)\""):
    prepare(release, str(tmp_path / 'tfds'))


def _write_vocabulary(release, word2int):
  path = os.path.join(release, 'annotation', 'RET', 'word2int.json')
  with open(path, 'w') as f:
    json.dump(word2int, f)


def test_caption_word_with_a_special_id_is_refused(tmp_path):
  release = write_release(str(tmp_path / 'release'))
  # A vocabulary numbered from 0 without the special tokens.
  _write_vocabulary(release, {word: index - 3 for word, index in
                              WORD2INT.items() if index >= 3})
  with pytest.raises(release_layout.ReleaseError,
                     match=r"word2int.json gives the caption word 'a' the id "
                     r'0, which is reserved \(0 BOS, 1 EOS, 2 UNK.*Number the '
                     'caption words from 3'):
    prepare(release, str(tmp_path / 'tfds'))


@pytest.mark.parametrize('specials', [
    ('<BOS>', '<EOS>', '<UNK>'), ('<s>', '</s>', '<pad>'),
    ('<start>', '<end>', '<Unk>')])
def test_special_tokens_in_any_spelling_are_accepted(specials):
  word2int = {word: index for word, index in WORD2INT.items() if index >= 3}
  word2int.update({token: index for index, token in enumerate(specials)})
  captions = {'vid1': [SHORT, 'A Man.'], 'vid2': [PREFIXED]}
  release_layout.check_special_ids(word2int, captions, 'word2int.json')
  # Only a word of the captions (as written or normalised) is refused.
  word2int['man'] = 1
  with pytest.raises(release_layout.ReleaseError, match="caption word 'man' "
                     'the id 1'):
    release_layout.check_special_ids(word2int, {'vid1': ['A MAN.']}, 'w')


def test_upper_case_special_tokens_prepare(tmp_path):
  release = write_release(str(tmp_path / 'release'))
  word2int = dict(WORD2INT)
  for token, upper in zip(('<bos>', '<eos>', '<unk>'),
                          ('<BOS>', '<EOS>', '<UNK>')):
    word2int[upper] = word2int.pop(token)
  _write_vocabulary(release, word2int)
  builder = prepare(release, str(tmp_path / 'tfds'))
  c = _examples(builder, 'train')['vid1']['captions']
  # The same ids as with the lower-case spelling: EOS (1) pads.
  np.testing.assert_array_equal(c['token_ids'][0][:6], [3, 4, 5, 3, 6, 1])