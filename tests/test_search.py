"""Indexing a collection with an export and searching it with sentences."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import h5py
import jax
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from conftest import tiny_config
from conftest import zero_inputs
from data_pipelines import frame_selection
from data_pipelines import input_pipeline
from data_pipelines import synthetic
from data_pipelines import tokenizers
from hgr_jax import export
from hgr_jax import models
from hgr_jax import search
from hgr_jax.search import queries as queries_lib
from hgr_jax.models import matching


@pytest.fixture(scope='module')
def exported(trained_workdir, tmp_path_factory):
  config, workdir, _ = trained_workdir
  out = str(tmp_path_factory.mktemp('export') / 'hgr')
  export.export_workdir(config, workdir, out)
  return export.load(out)


@pytest.fixture(scope='module')
def index(trained_workdir, exported, tmp_path_factory):
  config, _, _ = trained_workdir
  out = str(tmp_path_factory.mktemp('index') / 'test')
  # Chunks of 5: several shards, the last one short. float32, so that
  # search equals the model's scores to rounding (int8: tested apart).
  search.build_index(exported, search.dataset_source(config, 'test'), out,
                     chunk_size=5, progress=False, token_dtype='float32')
  return search.Index(out, exported)


@pytest.fixture(scope='module')
def test_captions(trained_workdir):
  config, _, _ = trained_workdir
  builder = input_pipeline.get_builder(config)
  return [(ex['video_id'].decode(), caption.decode())
          for ex in tfds.as_numpy(builder.as_dataset(split='test',
                                                     shuffle_files=False))
          for caption in ex['captions']['text']]


@pytest.mark.parametrize('num_frames', [1, 7, 20, 37])
def test_select_frames_matches_the_input_pipeline(num_frames):
  frames = np.random.default_rng(num_frames).normal(
      size=(num_frames, 3)).astype(np.float32)
  expected_frames, expected_mask = input_pipeline.select_frames(
      tf.constant(frames), 20)
  got_frames, got_mask = frame_selection.select_frames(frames, 20)
  np.testing.assert_array_equal(got_frames, expected_frames.numpy())
  np.testing.assert_array_equal(got_mask, expected_mask.numpy())


def _score_matrix(exported, index, text):
  """Full scores of every (video, query) pair: the independent reference."""
  videos = {k: np.concatenate([np.asarray(c[k]) for c in index.chunks()])
            for k in index.keys}
  return exported.scores(videos, text)


def _encoded_queries(exported, index, captions, query_batch=64,
                     first_stage='ann'):
  searcher = search.Searcher(exported, index, query_batch, first_stage)
  queries = search.QueryEncoder(exported).encode([c for _, c in captions])
  return searcher, queries, searcher.encode(queries)


@pytest.mark.parametrize('first_stage', search.FIRST_STAGES)
def test_exhaustive_and_full_two_stage_equal_the_score_matrix(
    exported, index, test_captions, first_stage):
  # Batches of 16: exhaustive search makes three passes (16, 16, 8).
  searcher, _, text = _encoded_queries(exported, index, test_captions[:40],
                                       16, first_stage)
  scores = _score_matrix(exported, index, text)
  k = 5
  for candidates in (0, len(index)):
    results = searcher.search(text, k, candidates)
    for q, hits in enumerate(results):
      fused = np.asarray(scores['fused'])[:, q]
      expected = np.argsort(-fused, kind='stable')[:k]
      assert [hit.row for hit in hits] == list(expected)
      for hit in hits:
        assert hit.video_id == index.video_ids[hit.row]
        for level, value in hit.scores.items():
          assert value == pytest.approx(
              float(np.asarray(scores[level])[hit.row, q]), abs=1e-5)


@pytest.mark.parametrize('first_stage', search.FIRST_STAGES)
def test_first_stage_keeps_the_best_global_cosines(exported, index,
                                                   test_captions,
                                                   first_stage):
  searcher, _, text = _encoded_queries(exported, index, test_captions[:8],
                                       first_stage=first_stage)
  scores = np.asarray(_score_matrix(exported, index, text)['global'])
  pools, cosines = searcher.best_global(text, 4)
  for q, pool in enumerate(pools):
    # The cosines are the model's global level of the rows, best first.
    np.testing.assert_allclose(cosines[q], scores[pool, q], atol=1e-5)
    assert list(cosines[q]) == sorted(cosines[q], reverse=True)
    if first_stage == 'exact':
      np.testing.assert_allclose(cosines[q], np.sort(scores[:, q])[::-1][:4],
                                 atol=1e-5)
  # Candidates that cannot hold the true best make two-stage differ from
  # exhaustive only where the first stage dropped it.
  two_stage = searcher.search(text, 1, 4)
  for q, hits in enumerate(two_stage):
    assert hits[0].row in pools[q]


def test_trained_model_finds_the_true_video_first(exported, index,
                                                  test_captions):
  searcher, _, text = _encoded_queries(exported, index, test_captions)
  results = searcher.search(text, 1)
  found = np.mean([hits[0].video_id == video
                   for hits, (video, _) in zip(results, test_captions)])
  assert found > 0.5


def test_explain_lists_valid_frames_by_attention(exported, index,
                                                 test_captions):
  searcher, queries, text = _encoded_queries(exported, index,
                                             test_captions[:1])
  hits = searcher.search(text, 3)[0]
  searcher.explain(hits, {k: v[0] for k, v in text.items()})
  counts = index.num_frames([hit.row for hit in hits])
  for hit, count in zip(hits, counts):
    assert set(hit.attention) == {'verb', 'noun'}
    for kind, slots in hit.attention.items():
      assert len(slots) == len(queries[0].phrases[kind])
      for frames in slots:
        weights = [w for _, w in frames]
        assert weights == sorted(weights, reverse=True)
        assert all(0 <= f < count for f, _ in frames)
  printed = search.format_results(queries[0], hits, explain=True)
  verb = next(p for p in queries[0].phrases['verb'] if p)
  assert f'verb "{verb}": frames' in printed


def test_queries_cut_to_their_length_encode_as_padded(exported, index):
  queries = search.QueryEncoder(exported).encode([
      'a man throws a ball to a dog', 'dog',
      ' '.join(['a man throws a ball'] * 3)])
  max_words = exported.manifest['max_words']
  cut = queries_lib.cut_to_length(search.stack_queries(queries[:2]),
                                  max_words)
  assert cut['token_ids'].shape[1] == 8 < max_words
  assert cut['verb_masks'].shape[-1] == cut['noun_masks'].shape[-1] == 8
  expected = exported.encode_text(search.stack_queries(queries))
  for query_batch in (1, 3):
    got = search.Searcher(exported, index, query_batch).encode(queries)
    for key, value in expected.items():
      np.testing.assert_allclose(got[key], value, atol=1e-6)


def test_bad_queries(exported):
  encoder = search.QueryEncoder(exported)
  with pytest.raises(search.SearchError, match='empty'):
    encoder.encode(['  ?! '])
  with pytest.raises(search.SearchError, match='unknown: zzz, qqq'):
    encoder.encode(['Zzz qqq.'])
  query, = encoder.encode(['a man on a xylophone'])
  assert 'unknown words ignored: xylophone' in query.warnings
  assert any('no verb' in w for w in query.warnings)
  assert not query.arrays['verb_masks'].any()
  assert query.arrays['noun_masks'].any()


def _failing(source, fail_at):
  """`source` cut after `fail_at` videos, as an interrupted run would be."""
  def read(start, stop):
    if stop > fail_at:
      raise KeyboardInterrupt
    return source.read(start, stop)
  return dataclasses.replace(source, read=read)


def test_index_resumes_and_refuses_another_export(
    trained_workdir, exported, index, tmp_path):
  config, _, _ = trained_workdir
  out = str(tmp_path / 'index')
  with pytest.raises(KeyboardInterrupt):
    search.build_index(exported, _failing(
        search.dataset_source(config, 'test'), 10), out, chunk_size=5,
                       progress=False, token_dtype='float32')
  with pytest.raises(search.SearchError, match='incomplete'):
    search.Index(out, exported)
  mtime = os.path.getmtime(os.path.join(out, 'shard-00000'))
  search.build_index(exported, search.dataset_source(config, 'test'), out,
                     chunk_size=5, progress=False, token_dtype='float32')
  assert os.path.getmtime(os.path.join(out, 'shard-00000')) == mtime
  resumed = search.Index(out, exported)
  assert resumed.video_ids == index.video_ids
  for a, b in zip(resumed.chunks(), index.chunks()):
    for key in index.keys:
      np.testing.assert_array_equal(a[key], b[key])

  other_dir = str(tmp_path / 'other')
  variables = {'params': jax_scale(exported.variables['params'], 2.0)}
  export.write_export(other_dir, config, variables,
                      _metadata(config), exported.manifest['feature_dim'])
  other = export.load(other_dir)
  with pytest.raises(search.SearchError, match='another export'):
    search.Index(out, other)
  with pytest.raises(search.SearchError, match='another export'):
    search.build_index(other, search.dataset_source(config, 'test'), out,
                       chunk_size=5, progress=False)
  with pytest.raises(search.SearchError, match='token dtype'):
    search.build_index(exported, search.dataset_source(config, 'test'), out,
                       chunk_size=5, progress=False, token_dtype='int8')


def test_index_of_an_older_format_is_refused(exported, index, tmp_path):
  out = str(tmp_path / 'old')
  shutil.copytree(index.path, out)
  header_path = os.path.join(out, search.INDEX_FILE)
  with open(header_path) as f:
    header = json.load(f)
  header['format_version'] = 1
  with open(header_path, 'w') as f:
    json.dump(header, f)
  with pytest.raises(search.SearchError,
                     match='index format 1, this code reads 2: index again'):
    search.Index(out, exported)


@pytest.mark.parametrize('token_dtype', search.TOKEN_DTYPES)
def test_records_round_trip(token_dtype):
  rng = np.random.default_rng(0)
  tokens = {'actions': rng.normal(size=(6, 5, 32)).astype(np.float32),
            'clips': rng.normal(size=(6, 3, 32)).astype(np.float32)}
  tokens['actions'][:, 4] = 0  # A padded frame.
  records = search.encode_records(tokens, token_dtype)
  assert records.dtype.names == (
      'actions', 'actions:scale', 'actions:gram',
      'clips', 'clips:scale', 'clips:gram')
  decoded = search.decode_records(records)
  for key, value in tokens.items():
    # int8: each element within half a step (scale / 2) of its vector's.
    step = np.abs(value).max(-1, keepdims=True) / 127
    tolerance = step / 2 + 1e-7 if token_dtype == 'int8' else 0
    assert np.all(np.abs(decoded[key] - value) <= tolerance)
    np.testing.assert_allclose(records[key + ':gram'],
                               [v @ v.T for v in value], rtol=1e-5,
                               atol=1e-5)
  assert not decoded['actions'][:, 4].any()
  assert records.dtype.itemsize == sum(
      (1 if token_dtype == 'int8' else 4) * 32 * t + 4 * t + 4 * t * t
      for t in (5, 3))


def test_phrase_scores_from_gram_equal_the_models():
  rng = np.random.default_rng(1)
  frames = rng.normal(size=(7, 6, 16)).astype(np.float32)
  valid = np.arange(6)[None] < rng.integers(1, 7, size=(7, 1))
  frames[~valid] = 0
  phrases = rng.normal(size=(3, 16)).astype(np.float32)
  phrase_mask = np.array([True, True, False])
  records = search.encode_records({'frames': frames}, 'float32')
  got = matching.phrase_scores_from_gram(
      records['frames'], records['frames:scale'], records['frames:gram'],
      valid, phrases, phrase_mask, 4.0)
  expected = matching.phrase_frame_scores_reference(
      frames, valid, phrases[None], phrase_mask[None], 4.0)[:, 0]
  np.testing.assert_allclose(got, expected, atol=1e-5)


def test_int8_index_scores_within_tolerance_of_float32(
    trained_workdir, exported, index, test_captions, tmp_path):
  config, _, _ = trained_workdir
  out = str(tmp_path / 'int8')
  search.build_index(exported, search.dataset_source(config, 'test'), out,
                     chunk_size=5, progress=False, token_dtype='int8')
  int8 = search.Index(out, exported)
  size = lambda path: sum(os.path.getsize(os.path.join(d, f))
                          for d, _, files in os.walk(path) for f in files)
  assert size(out) < 0.5 * size(index.path)
  searcher, _, text = _encoded_queries(exported, int8, test_captions[:20])
  reference = _score_matrix(exported, index, text)
  for candidates in (0, len(int8)):
    for q, hits in enumerate(searcher.search(text, 5, candidates)):
      for hit in hits:
        for level, value in hit.scores.items():
          # Measured on two trained test models: one level up to 1.2e-3 and
          # 3.0e-3 (a single noun score; median 1.6e-4), fused up to 5e-4
          # and 1.1e-3 (docs/search.md).
          tolerance = 2e-3 if level == 'fused' else 5e-3
          assert value == pytest.approx(
              float(np.asarray(reference[level])[hit.row, q]), abs=tolerance)


def jax_scale(tree, factor):
  return {k: jax_scale(v, factor) if isinstance(v, dict) else v * factor
          for k, v in tree.items()}


def _metadata(config):
  return input_pipeline.get_builder(config).info.metadata


def test_feature_file_of_another_size_is_refused(exported, tmp_path):
  path = str(tmp_path / 'features.hdf5')
  with h5py.File(path, 'w') as f:
    f['clip_a'] = np.zeros((8, exported.manifest['feature_dim'] + 1),
                           np.float32)
  expected = exported.manifest['feature_dim']
  with pytest.raises(search.SearchError, match=rf'expects \({expected},\)'):
    search.build_index(exported, search.hdf5_source(path),
                       str(tmp_path / 'index'), progress=False)


def _run(*args):
  return subprocess.run([sys.executable, '-m', *args], capture_output=True,
                        text=True, timeout=600)


def test_command_line_chain(trained_workdir, test_captions, tmp_path):
  """export -> index (HDF5 features) -> query, as the README runs them."""
  config, workdir, _ = trained_workdir
  out = str(tmp_path / 'export')
  exported = _run('hgr_jax.export', '--config=configs/synthetic.py:easy',
                  f'--workdir={workdir}', f'--out={out}',
                  *(f'--config.{k}={v}' for k, v in _overrides(config)))
  assert exported.returncode == 0, exported.stderr[-3000:]

  # The test videos as an HDF5 feature file, in the release's layout.
  source = search.dataset_source(config, 'test')
  features = str(tmp_path / 'test_ft.hdf5')
  with h5py.File(features, 'w') as f:
    for video_id, frames in zip(source.video_ids,
                                source.read(0, len(source.video_ids))):
      f[video_id] = frames
  index_dir = str(tmp_path / 'index')
  indexed = _run('hgr_jax.search', 'index', f'--export={out}',
                 f'--features={features}', f'--out={index_dir}')
  assert indexed.returncode == 0, indexed.stderr[-3000:]

  queries = str(tmp_path / 'queries.txt')
  with open(queries, 'w') as f:
    f.write('\n'.join(c for _, c in test_captions))
  queried = _run('hgr_jax.search', 'query', f'--export={out}',
                 f'--index={index_dir}', f'--queries_file={queries}',
                 '--k=3')
  assert queried.returncode == 0, queried.stderr[-3000:]
  firsts = re.findall(r'^ +1  (\S+) ', queried.stdout, re.MULTILINE)
  assert len(firsts) == len(test_captions)
  found = np.mean([got == video
                   for got, (video, _) in zip(firsts, test_captions)])
  assert found > 0.5

  bad = _run('hgr_jax.search', 'query', f'--export={out}',
             f'--index={index_dir}', '--query=zzz')
  assert bad.returncode != 0
  assert 'Error: ' in bad.stderr and 'Traceback' not in bad.stderr


def _overrides(config):
  """The command-line flags that turn configs/synthetic.py into `config`."""
  return [('data_dir', config.data_dir),
          *((f'synthetic.{k}', config.synthetic[k]) for k in (
              'feature_dim', 'num_train_videos', 'num_validation_videos',
              'num_test_videos')),
          *((f'model.{k}', config.model[k]) for k in (
              'word_dim', 'hidden_size', 'text_dropout', 'video_dropout',
              'gcn_dropout'))]


def _random_export_and_index(name, tmp_path):
  """An export of `name` with random weights and an index of 11 random
  videos of 3-29 frames (chunks of 4)."""
  config = tiny_config(name)
  feature_dim = config.synthetic.feature_dim
  metadata = tokenizers.TokenizerMetadata(word2int=synthetic.word2int())
  model = models.create_model(config, max(synthetic.word2int().values()) + 1)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0),
                                  zero_inputs(config, feature_dim, 2))
  export.write_export(str(tmp_path / 'export'), config, variables, metadata,
                      feature_dim)
  exported = export.load(str(tmp_path / 'export'))
  rng = np.random.default_rng(0)
  features = str(tmp_path / 'features.hdf5')
  with h5py.File(features, 'w') as f:
    for i in range(11):
      f[f'clip_{i:02d}'] = rng.normal(size=(rng.integers(3, 30),
                                            feature_dim)).astype(np.float32)
  search.build_index(exported, search.hdf5_source(features),
                     str(tmp_path / 'index'), chunk_size=4, progress=False)
  return exported, search.Index(str(tmp_path / 'index'), exported)


@pytest.fixture(scope='module')
def random_search(tmp_path_factory):
  """`name` -> (export, index) of _random_export_and_index, built once per
  module: three HCMI tests read the same one (read-only)."""
  built = {}
  def get(name):
    if name not in built:
      built[name] = _random_export_and_index(
          name, tmp_path_factory.mktemp(f'random_{name}'))
    return built[name]
  return get


@pytest.mark.parametrize('name', ['hanet', 'vsepp', 'hcmi'])  # HGR: above.
def test_every_registered_model_searches(name, random_search):
  """Random weights: export -> HDF5 index -> two-stage and exhaustive search
  agree, and --explain reads each model's alignments."""
  exported, index = random_search(name)
  searcher = search.Searcher(exported, index)
  queries = search.QueryEncoder(exported).encode(
      ['a man throws a ball to a dog', 'a woman rides a horse'])
  text = searcher.encode(queries)
  exhaustive = searcher.search(text, 3, 0)
  two_stage = searcher.search(text, 3, len(index))
  for a, b in zip(exhaustive, two_stage):
    assert [h.video_id for h in a] == [h.video_id for h in b]
    assert [h.scores['fused'] for h in a] == pytest.approx(
        [h.scores['fused'] for h in b], abs=1e-5)
  hits = exhaustive[0]
  searcher.explain(hits, {k: v[0] for k, v in text.items()})
  expected = set(exported.model.search_hooks().alignments)
  assert all(set(hit.attention) == expected for hit in hits)


def test_hcmi_first_stage_is_its_video_sentence_level(random_search):
  exported, index = random_search('hcmi')
  searcher = search.Searcher(exported, index)
  text = searcher.encode(search.QueryEncoder(exported).encode(
      ['a man throws a ball to a dog', 'a dog runs']))
  level = np.asarray(_score_matrix(exported, index, text)['video_sentence'])
  for q, pool in enumerate(searcher.first_stage_rows(text, 5)):
    np.testing.assert_allclose(level[pool, q],
                               np.sort(level[:, q])[::-1][:5], atol=1e-5)


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_hcmi_explain_names_each_words_best_frame_and_phrases_best_clip(
    random_search):
  exported, index = random_search('hcmi')
  searcher = search.Searcher(exported, index)
  query, = search.QueryEncoder(exported).encode(['A man throws a ball zzz'])
  text = searcher.encode([query])
  hits = searcher.search(text, 3)[0]
  searcher.explain(hits, {k: v[0] for k, v in text.items()})
  rows = [hit.row for hit in hits]
  videos = index.gather(rows)
  max_frames = exported.manifest['max_frames']
  for i, (hit, count) in enumerate(zip(hits, index.num_frames(rows))):
    # NumPy reference: each word's cosine with every valid frame.
    cosines = _unit(videos['frames'][i]) @ _unit(text['words'][0]).T
    cosines[~videos['frame_mask'][i]] = -np.inf
    positions = frame_selection.frame_positions(count, max_frames)
    words = query.phrases['word']
    assert words[:6] == ['a', 'man', 'throws', 'a', 'ball', '']
    for slot in range(int(query.arrays['length'])):
      tokens = hit.attention['word'][slot]
      best = int(np.argmax(cosines[:, slot]))
      assert tokens[0][0] == positions[best] < count
      assert tokens[0][1] == pytest.approx(cosines[best, slot], abs=1e-5)
      assert len(tokens) == min(3, count)
    clip_cosines = _unit(videos['clips'][i]) @ _unit(text['phrases'][0]).T
    assert [tokens[0][0] for tokens in hit.attention['phrase']] == list(
        1 + np.argmax(clip_cosines, axis=0))
  printed = search.format_results(query, hits, True, searcher.hooks)
  assert 'word "throws": frames' in printed
  assert 'phrase 1: clips' in printed
  assert 'word ""' not in printed and 'word "zzz"' not in printed
