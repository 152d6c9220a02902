"""Export of a trained workdir and loading it back."""

import json
import os

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import frame_selection
from data_pipelines import input_pipeline
from data_pipelines import role_graph
from data_pipelines import tokenizers
from hgr_jax import evaluate
from hgr_jax import export
from hgr_jax import metrics
from hgr_jax import models
from hgr_jax import search
from hgr_jax import sharding
from conftest import tiny_config
from conftest import zero_inputs


@pytest.fixture(scope='module')
def exported_dir(trained_workdir, tmp_path_factory):
  config, workdir, _ = trained_workdir
  out = str(tmp_path_factory.mktemp('export') / 'hgr')
  export.export_workdir(config, workdir, out)
  return out


def _test_split(config):
  builder = input_pipeline.get_builder(config)
  source = search.dataset_source(config, 'test')
  selected = [frame_selection.select_frames(f, config.max_frames)
              for f in source.read(0, len(source.video_ids))]
  frames = np.stack([f for f, _ in selected])
  frame_mask = np.stack([m for _, m in selected])
  batches = list(tfds.as_numpy(
      input_pipeline.caption_dataset(builder, 'test', 1000)))
  captions = {k: np.concatenate([b[k] for b in batches])
              for k in input_pipeline.CAPTION_KEYS}
  caption_video = np.concatenate([b['video_index'] for b in batches])
  return frames, frame_mask, captions, caption_video


def test_round_trip_equals_the_workdirs_test_scores(trained_workdir,
                                                    exported_dir):
  config, workdir, test_metrics = trained_workdir
  loaded = export.load(exported_dir)
  frames, frame_mask, captions, caption_video = _test_split(config)
  scores = loaded.scores(loaded.encode_video(frames, frame_mask),
                         loaded.encode_text(captions))
  # The training code path on the workdir's own best checkpoint.
  variables, step, _, _ = export.best_variables(config, workdir)
  evaluator = evaluate.Evaluator(loaded.model, sharding.data_mesh(), 16)
  reference = evaluator.score_matrix(
      variables, evaluator.encode_videos(
          variables, [{'frames': frames, 'frame_mask': frame_mask}]),
      evaluator.encode_captions(variables, [captions]))
  for level in reference:
    np.testing.assert_allclose(scores[level], reference[level], atol=1e-5)
  ours = metrics.retrieval_metrics(np.asarray(scores['fused']),
                                   caption_video)
  for name in ('t2v_r1', 't2v_r5', 'v2t_r1', 'rsum'):
    assert ours[name] == pytest.approx(test_metrics[name], abs=1e-6)
  assert loaded.manifest['source']['step'] == step == \
      test_metrics['checkpoint_step']


def test_export_holds_inference_variables_only(trained_workdir,
                                               exported_dir):
  config, _, _ = trained_workdir
  loaded = export.load(exported_dir)
  assert set(loaded.variables) == {'params', 'batch_stats'}
  manifest = loaded.manifest
  assert (manifest['model_name'], manifest['feature_dim'],
          manifest['max_frames'], manifest['max_words']) == (
              'hgr', config.synthetic.feature_dim, config.max_frames,
              config.max_words)
  assert loaded.tokenizer.vocab == input_pipeline.vocabulary(
      input_pipeline.get_builder(config))


def test_a_modified_export_is_refused(exported_dir, tmp_path):
  copy = str(tmp_path / 'copy')
  os.system(f'cp -r {exported_dir} {copy}')
  path = os.path.join(copy, export.CONFIG_FILE)
  with open(path) as f:
    config = json.load(f)
  config['model']['attention_sigma'] = 5.0
  with open(path, 'w') as f:
    json.dump(config, f)
  with pytest.raises(export.ExportError, match='modified after'):
    export.load(copy)


def test_missing_export_says_how_to_make_one(tmp_path):
  with pytest.raises(export.ExportError, match='python -m hgr_jax.export'):
    export.load(str(tmp_path / 'nothing'))


def test_sentencepiece_tokenizer_travels_with_the_export(tmp_path):
  config = tiny_config()
  captions = ['a man throws a ball', 'a dog catches the red ball',
              'a woman walks a dog on the beach'] * 20
  piece_tokenizer = tokenizers.train_sentencepiece(captions, 40)
  metadata = tokenizers.TokenizerMetadata()
  metadata.set_sentencepiece(piece_tokenizer)
  vocab_size = max(metadata['word2int'].values()) + 1
  model = models.create_model(config, vocab_size)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), zero_inputs(
      config, config.synthetic.feature_dim, 2))
  out = str(tmp_path / 'export')
  export.write_export(out, config, variables, metadata,
                      config.synthetic.feature_dim)
  loaded = export.load(out)
  words = 'a dog throws the ball'.split()
  assert (loaded.tokenizer.encode_words(words) ==
          piece_tokenizer.encode_words(words))
  assert loaded.manifest['tokenizer']['kind'] == 'sentencepiece'
  graph = [{'ROOT': {'role': 'ROOT', 'spans': [0, 1, 2, 3, 4],
                     'words': words}}, []]
  arrays = role_graph.encode_caption(' '.join(words), graph,
                                     loaded.tokenizer, config.max_words,
                                     config.num_verbs, config.num_nouns)
  encoded = loaded.encode_text({k: np.asarray(v)[None]
                                for k, v in arrays.items()})
  direct = model.apply(variables, {k: np.asarray(v)[None]
                                   for k, v in arrays.items()},
                       method=model.encode_text)
  # Jitted against eager: float32 rounding of values around 0.02.
  np.testing.assert_allclose(encoded['sentence'], direct['sentence'],
                             rtol=1e-6, atol=1e-6)


def test_saved_model_encoders_equal_jax(exported_dir, tmp_path):
  pytest.importorskip('orbax.export')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  loaded = export.load(exported_dir)
  saved_dir = str(tmp_path / 'saved_model')
  export.write_saved_model(loaded, saved_dir)
  saved = tf.saved_model.load(saved_dir)
  manifest = loaded.manifest
  rng = np.random.default_rng(0)
  frames = rng.normal(size=(3, manifest['max_frames'],
                            manifest['feature_dim'])).astype(np.float32)
  frame_mask = np.arange(manifest['max_frames']) < np.array([[20], [7], [1]])
  got = saved.signatures['encode_video'](frames=tf.constant(frames),
                                         frame_mask=tf.constant(frame_mask))
  expected = loaded.encode_video(frames, frame_mask)
  for key in ('event', 'actions', 'entities'):
    np.testing.assert_allclose(got[key].numpy(), expected[key], atol=1e-5)

  queries = search.QueryEncoder(loaded).encode(
      ['a man throws a ball to a dog', 'a girl rides a horse'])
  text = search.stack_queries(queries)
  got = saved.signatures['encode_text'](
      **{k: tf.constant(v) for k, v in text.items()})
  expected = loaded.encode_text(text)
  for key in ('sentence', 'verbs', 'nouns'):
    np.testing.assert_allclose(got[key].numpy(), expected[key], atol=1e-5)
