"""HCMI: aggregation masking, token-wise scores, losses, ALD, frame views."""

import json

import conftest
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from data_pipelines import frame_sampling
from data_pipelines import input_pipeline
from hgr_jax import contrastive_losses
from hgr_jax import train
from hgr_jax.models import aggregation
from hgr_jax.models import hcmi
from hgr_jax.models import matching


def _inputs(rng, batch=4, frames=10, words=8, feature_dim=12):
  num_frames = np.array([10, 5, 7, 3])[:batch]
  lengths = np.array([8, 3, 5, 2])[:batch]
  frames = rng.normal(size=(batch, frames, feature_dim)).astype(np.float32)
  return {
      'frames': frames,
      'frames_view2': frames[:, ::-1].copy(),
      'frame_mask': np.arange(frames.shape[1])[None] < num_frames[:, None],
      'token_ids': rng.integers(3, 50, (batch, words)).astype(np.int32),
      'length': lengths.astype(np.int32),
      'video_key': np.array([7, 8, 8, 9], np.int32)[:batch],
  }


def _noisy_padding(batch, rng):
  """The same batch with random frames and words in the padded slots."""
  valid_words = (np.arange(batch['token_ids'].shape[1])[None] <
                 batch['length'][:, None])
  return dict(
      batch,
      frames=np.where(batch['frame_mask'][..., None], batch['frames'],
                      10 * rng.normal(size=batch['frames'].shape)
                      ).astype(np.float32),
      token_ids=np.where(valid_words, batch['token_ids'],
                         rng.integers(3, 50, batch['token_ids'].shape)
                         ).astype(np.int32))


def test_aggregation_ignores_padded_tokens():
  rng = np.random.default_rng(0)
  tokens = rng.normal(size=(3, 6, 16)).astype(np.float32)
  mask = np.arange(6)[None] < np.array([6, 2, 4])[:, None]
  noisy = np.where(mask[..., None], tokens,
                   rng.normal(size=tokens.shape) * 10).astype(np.float32)
  for block in (aggregation.AggregationBlock(3, 4, 0.0),
                aggregation.TransformerLayer(4, 0.0)):
    params = block.init(jax.random.PRNGKey(0), tokens, mask, False)
    clean = block.apply(params, tokens, mask, False)
    padded = block.apply(params, noisy, mask, False)
    if isinstance(block, aggregation.TransformerLayer):
      clean, padded = clean * mask[..., None], padded * mask[..., None]
    else:
      assert clean.shape == (3, 3, 16)
    np.testing.assert_allclose(padded, clean, atol=1e-5)
    # And the valid tokens do matter.
    moved = block.apply(params, tokens + 1.0, mask, False)
    assert np.abs(moved - block.apply(params, tokens, mask, False)).max() > 1e-2


def test_segment_aggregation_reads_its_segment_only():
  rng = np.random.default_rng(8)
  lengths = np.array([10, 7, 3])
  mask = np.arange(10)[None] < lengths[:, None]
  # NumPy reference: valid token i of n in segment floor(4 i / n); an empty
  # segment takes every valid token.
  expected = np.zeros((3, 4, 10), bool)
  for b, n in enumerate(lengths):
    for i in range(n):
      expected[b, 4 * i // n, i] = True
    for k in range(4):
      if not expected[b, k].any():
        expected[b, k, :n] = True
  np.testing.assert_array_equal(aggregation.segment_masks(mask, 4), expected)

  tokens = rng.normal(size=(3, 10, 16)).astype(np.float32)
  block = aggregation.AggregationBlock(4, 4, 0.0, segments=True)
  params = block.init(jax.random.PRNGKey(0), tokens, mask, False)
  clips = block.apply(params, tokens, mask, False)
  # Video 0's segment 1 is tokens 3-4: only its clip 1 moves.
  moved = tokens.copy()
  moved[0, 3:5] += 1.0
  changed = np.abs(block.apply(params, moved, mask, False) - clips).max(-1)
  assert changed[0, 1] > 1e-2
  np.testing.assert_allclose(np.delete(changed[0], 1), 0.0, atol=1e-5)
  np.testing.assert_allclose(changed[1:], 0.0, atol=1e-5)


@pytest.mark.parametrize('segments', [False, True])
def test_attention_centroids_match_numpy(segments):
  rng = np.random.default_rng(9)
  tokens = rng.normal(size=(2, 7, 8)).astype(np.float32)
  mask = np.arange(7)[None] < np.array([7, 5])[:, None]
  block = aggregation.AttentionCentroids(3, segments)
  params = block.init(jax.random.PRNGKey(0), tokens, mask, False)
  queries = np.asarray(params['params']['queries']) * 50  # Peaked weights.
  params = {'params': dict(params['params'], queries=queries)}
  kernel = np.asarray(params['params']['key']['kernel'])
  allowed = (np.asarray(aggregation.segment_masks(mask, 3)) if segments
             else np.repeat(mask[:, None], 3, 1))
  expected = np.zeros((2, 3, 8))
  for b in range(2):
    for q in range(3):
      valid = np.flatnonzero(allowed[b, q])
      logits = np.array([queries[q] @ (tokens[b, i] @ kernel) / np.sqrt(8)
                         for i in valid])
      weights = np.exp(logits - logits.max())
      expected[b, q] = (weights / weights.sum()) @ tokens[b, valid]
  np.testing.assert_allclose(block.apply(params, tokens, mask, False),
                             expected, atol=1e-5)


def test_padding_changes_no_hcmi_score_or_loss():
  rng = np.random.default_rng(1)
  batch = _inputs(rng)
  model = hcmi.HCMI(vocab_size=50, word_dim=16, hidden_size=32, num_heads=4)
  variables = model.init(jax.random.PRNGKey(0), batch,
                         method=model.train_outputs, train=False)
  noisy = _noisy_padding(batch, rng)
  noisy['frames_view2'] = noisy['frames'][:, ::-1].copy()
  noisy['frames_view2'][:, :batch['frames'].shape[1]] = np.where(
      batch['frame_mask'][..., None], batch['frames_view2'],
      noisy['frames_view2'])
  clean = model.apply(variables, batch)
  padded = model.apply(variables, noisy)
  assert set(clean) == {'frame_word', 'clip_phrase', 'video_sentence',
                        'fused'}
  for level in clean:
    np.testing.assert_allclose(padded[level], clean[level], atol=1e-5,
                               err_msg=level)
  np.testing.assert_allclose(
      clean['fused'], (clean['frame_word'] + clean['clip_phrase'] +
                       clean['video_sentence']) / 3, atol=1e-6)
  loss, terms = model.apply(
      variables, model.apply(variables, batch, method=model.train_outputs,
                             train=False), batch, method=model.loss)
  assert np.isfinite(loss) and set(terms) >= {'frame_word', 'mse'}


def _best(values, softmax_scale):
  """Max of `values`, or their softmax-weighted mean."""
  if softmax_scale is None:
    return values.max()
  weights = np.exp(softmax_scale * (values - values.max()))
  return (weights / weights.sum()) @ values


def _token_wise_loop(video, video_mask, video_weights, text, text_mask,
                     text_weights, softmax_scale=None):
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  video, text = unit(video), unit(text)
  out = np.zeros((len(video), len(text)))
  for v in range(len(video)):
    for c in range(len(text)):
      frames = np.flatnonzero(video_mask[v])
      words = np.flatnonzero(text_mask[c])
      sim = np.array([[video[v, f] @ text[c, w] for w in words]
                      for f in frames])  # (valid frames, valid words)
      t2v = sum(text_weights[c, w] * _best(sim[:, i], softmax_scale)
                for i, w in enumerate(words))
      v2t = sum(video_weights[v, f] * _best(sim[i, :], softmax_scale)
                for i, f in enumerate(frames))
      out[v, c] = (t2v + v2t) / 2
  return out


@pytest.mark.parametrize('matmul_dtype, softmax_scale', [
    (None, None), (jnp.bfloat16, None), (None, 5.0)])
def test_token_wise_scores_match_loop(matmul_dtype, softmax_scale):
  rng = np.random.default_rng(2)
  video = rng.normal(size=(3, 5, 8)).astype(np.float32)
  text = rng.normal(size=(4, 6, 8)).astype(np.float32)
  video_mask = np.arange(5)[None] < np.array([5, 2, 3])[:, None]
  text_mask = np.arange(6)[None] < np.array([6, 1, 4, 2])[:, None]
  video_weights = rng.random((3, 5)) * video_mask
  video_weights /= video_weights.sum(1, keepdims=True)
  text_weights = rng.random((4, 6)) * text_mask
  text_weights /= text_weights.sum(1, keepdims=True)
  # Padded tokens closer to everything than any valid token must not count.
  video[~video_mask] = 100.0
  text[~text_mask] = 100.0
  expected = _token_wise_loop(video, video_mask, video_weights, text,
                              text_mask, text_weights, softmax_scale)
  got = matching.token_wise_scores(video, video_mask,
                                   video_weights.astype(np.float32), text,
                                   text_mask, text_weights.astype(np.float32),
                                   matmul_dtype, softmax_scale)
  atol = 1e-5 if matmul_dtype is None else 2e-2
  np.testing.assert_allclose(got, expected, atol=atol)


def test_multi_positive_info_nce_matches_numpy():
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(4, 4)) * 3
  positives = np.eye(4, dtype=bool)
  positives[0, 2] = positives[3, 1] = positives[3, 0] = True
  expected = 0.0
  for i in range(4):
    log_probs = logits[i] - np.log(np.exp(logits[i]).sum())
    expected -= log_probs[positives[i]].mean() / 4
  got = contrastive_losses.multi_positive_info_nce(
      jnp.asarray(logits, jnp.float32), positives)
  np.testing.assert_allclose(got, expected, rtol=1e-5)

  # The symmetric loss reads the same positives for the transposed logits.
  scores = rng.normal(size=(4, 4)).astype(np.float32)
  symmetric = contrastive_losses.symmetric_info_nce(scores, positives, 5.0)
  rows = contrastive_losses.multi_positive_info_nce(5.0 * scores, positives)
  columns = contrastive_losses.multi_positive_info_nce(5.0 * scores.T,
                                                       positives)
  np.testing.assert_allclose(symmetric, (rows + columns) / 2, rtol=1e-6)
  # One positive per row: plain cross-entropy on the diagonal.
  diagonal = -np.mean([np.log(np.exp(5 * scores[i, i]) /
                              np.exp(5 * scores[i]).sum()) for i in range(4)])
  np.testing.assert_allclose(
      contrastive_losses.multi_positive_info_nce(5.0 * scores,
                                                 np.eye(4, dtype=bool)),
      diagonal, rtol=1e-5)


def _info_nce_numpy(scores, positives, scale):
  """Symmetric multi-positive InfoNCE, row by row."""
  def rows(logits, positives):
    out = 0.0
    for i in range(len(logits)):
      log_probs = logits[i] - np.log(np.exp(logits[i]).sum())
      out -= log_probs[positives[i]].mean() / len(logits)
    return out
  logits = scale * np.asarray(scores, np.float64)
  return (rows(logits, positives) + rows(logits.T, positives)) / 2


def _hinge_numpy(scores, excluded, margin):
  """Max-violation hinge, both directions, mean over the batch."""
  n = len(scores)
  caption = [max([max(margin + scores[i, j] - scores[i, i], 0)
                  for j in range(n) if not excluded[i, j]] or [0])
             for i in range(n)]
  video = [max([max(margin + scores[k, j] - scores[j, j], 0)
                for k in range(n) if not excluded[k, j]] or [0])
           for j in range(n)]
  return np.mean(caption) + np.mean(video)


@pytest.mark.parametrize('overrides', [
    dict(level_loss='hinge'),
    dict(per_level_temperature=True, temperature_lr_multiplier=10.0),
])
def test_level_losses_match_numpy(overrides):
  batch = _inputs(np.random.default_rng(6))
  model = hcmi.HCMI(vocab_size=50, word_dim=16, hidden_size=32, num_heads=4,
                    use_ald=False, mse_weight=0.0, **overrides)
  variables = model.init(jax.random.PRNGKey(0), batch)
  scales = dict(zip(hcmi.LEVELS, [10.0, 20.0, 40.0]))
  if model.per_level_temperature:
    # Stored divided by the multiplier.
    params = dict(variables['params'], log_logit_scale=jnp.log(
        jnp.array(list(scales.values()))) / 10.0)
    variables = dict(variables, params=params)
  outputs = model.apply(variables, batch, method=model.train_outputs,
                        train=False)
  loss, terms = model.apply(variables, outputs, batch, method=model.loss)
  same_video = batch['video_key'][:, None] == batch['video_key'][None]
  expected = 0.0
  for level in hcmi.LEVELS:
    scores = np.asarray(outputs['scores'][level])
    if model.level_loss == 'hinge':
      want = _hinge_numpy(scores, same_video, model.margin)
    else:
      want = _info_nce_numpy(scores, same_video, scales[level])
      np.testing.assert_allclose(terms[f'logit_scale_{level}'],
                                 scales[level], rtol=1e-5)
    np.testing.assert_allclose(terms[level], want, rtol=1e-4, err_msg=level)
    expected += want
  np.testing.assert_allclose(loss, expected, rtol=1e-4)
  if model.per_level_temperature:
    # Fused as the levels' logits: weights times logit scales, normalised.
    fused = model.clone(fuse_logits=True, fusion_weights=dict(
        frame_word=1.0, clip_phrase=2.0, video_sentence=1.0)).apply(
            variables, batch)['fused']
    weights = {level: scales[level] * (2.0 if level == 'clip_phrase' else 1.0)
               for level in hcmi.LEVELS}
    want = sum(w * np.asarray(outputs['scores'][level])
               for level, w in weights.items()) / sum(weights.values())
    np.testing.assert_allclose(fused, want, rtol=1e-5, atol=1e-6)


def test_mean_pooling_and_fusion_weights():
  batch = _inputs(np.random.default_rng(7))
  model = hcmi.HCMI(vocab_size=50, word_dim=16, hidden_size=32, num_heads=4,
                    global_pooling='mean', fusion_weights=dict(
                        frame_word=2.0, clip_phrase=0.0, video_sentence=1.0))
  variables = model.init(jax.random.PRNGKey(0), batch)
  assert 'clips_to_video' not in variables['params']['video_encoder']
  video = model.apply(variables, batch['frames'], batch['frame_mask'],
                      method=model.encode_video)
  text = model.apply(variables, batch, method=model.encode_text)
  np.testing.assert_allclose(video['video'], video['clips'].mean(1),
                             atol=1e-6)
  np.testing.assert_allclose(text['sentence'], text['phrases'].mean(1),
                             atol=1e-6)
  scores = model.apply(variables, batch)
  np.testing.assert_allclose(
      scores['fused'],
      (2 * scores['frame_word'] + scores['video_sentence']) / 3, atol=1e-6)


def test_ald_positives_hand_worked():
  # Views of 3 videos in 2-d (unit vectors). Own cosines: video 0: 0.8,
  # video 1: 0.36 - 0.64 = -0.28 (its views disagree), video 2: 0.8.
  view1 = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], np.float32)
  view2 = np.array([[0.8, 0.6], [0.6, -0.8], [-0.6, 0.8]], np.float32)
  # Mean cross cosines (1/4) sum_{k,l} cos(x_k, y_l):
  # (0, 1): 0.6 + 0.6 + 0.96 + 0.0 -> 0.54; (0, 2): 0 - 0.6 + 0.6 + 0 -> 0;
  # (1, 2): 0.8 + 0.28 - 0.8 - 1.0 -> -0.18.
  # Row i takes j when cross >= own_i: video 1 (-0.28) takes 0 and 2;
  # videos 0 and 2 (0.8) take nobody else.
  expected = np.array([[1, 0, 0], [1, 1, 1], [0, 0, 1]], bool)
  got = contrastive_losses.ald_positives(view1, view2)
  np.testing.assert_array_equal(got, expected)


def test_marginal_sample_enhancement_matches_numpy():
  rng = np.random.default_rng(4)
  scores = rng.uniform(-1, 1, (5, 5)).astype(np.float32)
  positives = np.eye(5, dtype=bool)
  positives[1, 2] = positives[2, 1] = True
  theta = 0.3
  expected = 0.0
  for i in range(5):
    hardest_caption = max(scores[i, j] for j in range(5)
                          if not positives[i, j])
    hardest_video = max(scores[k, i] for k in range(5)
                        if not positives[k, i])
    expected += (max(hardest_caption - scores[i, i] + theta, 0) +
                 max(hardest_video - scores[i, i] + theta, 0)) / 2 / 5
  got = contrastive_losses.marginal_sample_enhancement(scores, positives,
                                                       theta)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_dual_softmax_matches_numpy():
  scores = np.array([[0.9, 0.5], [0.1, 0.45]])  # (videos, captions)
  prior = np.exp(10 * scores) / np.exp(10 * scores).sum(1, keepdims=True)
  reranked = hcmi.dual_softmax(scores, 10.0)
  np.testing.assert_allclose(reranked, scores * prior)
  # Caption 1 scores video 0 highest, but video 0 matches caption 0 far
  # better: after re-ranking caption 1 retrieves video 1.
  assert scores[0, 1] > scores[1, 1] and reranked[1, 1] > reranked[0, 1]


def test_segment_views_one_frame_per_segment():
  frames = tf.reshape(tf.range(10 * 3, dtype=tf.float32), (10, 3))
  seen = [set() for _ in range(4)]
  for seed in range(40):
    views = frame_sampling.two_views(frames, 4, tf.constant([seed, 0]))
    assert views['frame_mask'].numpy().all()
    for name in ('frames', 'frames_view2'):
      picked = views[name].numpy()[:, 0].astype(int) // 3
      for k, index in enumerate(picked):
        seen[k].add(index)
  # Segments floor(2.5 k) .. floor(2.5 (k + 1)) - 1, each frame reachable.
  assert seen == [{0, 1}, {2, 3, 4}, {5, 6}, {7, 8, 9}]
  again = frame_sampling.two_views(frames, 4, tf.constant([3, 0]))
  first = frame_sampling.two_views(frames, 4, tf.constant([3, 0]))
  np.testing.assert_array_equal(again['frames'], first['frames'])
  assert any(
      not np.array_equal(*[frame_sampling.two_views(
          frames, 4, tf.constant([s, 0]))[k] for k in ('frames',
                                                       'frames_view2')])
      for s in range(5))


def test_segment_views_keep_short_videos_whole():
  frames = tf.ones((3, 2))
  views = frame_sampling.two_views(frames, 5, tf.constant([0, 0]))
  np.testing.assert_array_equal(views['frame_mask'],
                                [True, True, True, False, False])
  np.testing.assert_array_equal(views['frames'], views['frames_view2'])
  assert views['frames'].shape == (5, 2)


@pytest.mark.parametrize('overrides, levels, has_mse', [
    ({}, {'frame_word', 'clip_phrase', 'video_sentence'}, True),
    (dict(use_ald=False), {'frame_word', 'clip_phrase', 'video_sentence'},
     True),
    (dict(mse_weight=0.0), {'frame_word', 'clip_phrase', 'video_sentence'},
     False),
    (dict(levels=('video_sentence',)), {'video_sentence'}, True),
])
def test_ablation_switches(overrides, levels, has_mse):
  batch = _inputs(np.random.default_rng(5))
  model = hcmi.HCMI(vocab_size=50, word_dim=16, hidden_size=32, num_heads=4,
                    **overrides)
  variables = model.init(jax.random.PRNGKey(0), batch)
  outputs = model.apply(variables, batch, method=model.train_outputs,
                        train=False)
  assert set(outputs['scores']) == levels | {'fused'}
  assert ('video_view2' in outputs) == model.use_ald
  loss, terms = model.apply(variables, outputs, batch, method=model.loss)
  assert set(terms) == levels | {'ald_positives', 'logit_scale'} | (
      {'mse'} if has_mse else set())
  np.testing.assert_allclose(terms['logit_scale'], 1 / 0.07, rtol=1e-5)
  expected = sum(terms[level] for level in levels) + (
      terms['mse'] if has_mse else 0.0)
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  # Videos 1 and 2 of the batch are one video: never fewer positives.
  assert terms['ald_positives'] >= 1.5 - 1e-6


def test_train_pipeline_samples_two_views(tiny_data_dir):
  config = conftest.tiny_config('hcmi', data_dir=tiny_data_dir)
  config.max_frames = 8  # Below every synthetic video's length.
  builder = input_pipeline.get_builder(config)
  originals = {
      int(tf.strings.to_hash_bucket_fast(ex['video_id'], 2**31 - 1)):
      ex['frames'] for ex in tfds.as_numpy(builder.as_dataset(split='train'))}

  def first_batch(epoch, fields=(('frame_views', {}),)):
    return next(iter(tfds.as_numpy(input_pipeline.train_dataset(
        builder, config, epoch, 16, extra_features=dict(fields)))))

  batch = first_batch(0)
  assert batch['frame_mask'].all()
  for key, *views in zip(batch['video_key'], batch['frames'],
                         batch['frames_view2']):
    frames = originals[int(key)]
    for view in views:  # Rows of the video, in temporal order.
      rows = [np.flatnonzero((frames == frame).all(-1))[0] for frame in view]
      assert rows == sorted(rows) and len(set(rows)) == len(rows)
  assert not np.array_equal(batch['frames'], batch['frames_view2'])
  np.testing.assert_array_equal(first_batch(0)['frames_view2'],
                                batch['frames_view2'])
  assert not np.array_equal(first_batch(1)['frames'], batch['frames'])
  # Without the field: the evenly spaced frames and no second view.
  assert 'frames_view2' not in first_batch(0, ())


def test_train_and_evaluate_writes_test_metrics(tiny_data_dir, tmp_path):
  config = conftest.tiny_config('hcmi', data_dir=tiny_data_dir)
  config.num_epochs = 1
  config.binary_selection = False
  config.model.dual_softmax = True
  results = train.train_and_evaluate(config, str(tmp_path))
  with open(tmp_path / train.TEST_METRICS_FILE) as f:
    written = json.load(f)
  assert written == pytest.approx(results)
  for level in ('frame_word', 'clip_phrase', 'video_sentence'):
    assert 0 < written[f'{level}_rsum'] <= 600
  assert 0 <= written['t2v_r1'] <= written['t2v_r5'] <= 100
