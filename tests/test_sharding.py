"""Numbers on several (forced CPU) devices equal the one-device numbers: the
train step's loss and gradients of every model on 8 devices, evaluation's
score matrices and binary selection on 4."""

import os
import subprocess
import sys
import textwrap

from hgr_jax import models

# A batch of 32 captions, its word axis padded so that every pair fits: on
# 8 devices the packed BiGRU pairs the 4 captions of each device's share
# (tests/test_bigru.py takes the BiGRU's other branches on 1-8 devices).
# sys.argv[1:] = data dir, model names.
_LOSS_AND_GRADS_SCRIPT = textwrap.dedent('''
    import functools, sys, traceback
    import jax, numpy as np
    import tensorflow_datasets as tfds
    sys.path.insert(0, 'tests')
    from conftest import tiny_config
    from data_pipelines import input_pipeline
    from hgr_jax import models, sharding, train
    from hgr_jax.models import packed_gru

    assert jax.device_count() == 8, jax.devices()
    data_dir, names = sys.argv[1], sys.argv[2:]
    def check(name, batch_size):
        config = tiny_config(model=name, data_dir=data_dir)
        config.batch_size = batch_size
        builder = input_pipeline.get_builder(config)
        model = models.create_model(
            config, len(input_pipeline.vocabulary(builder)))
        batch = next(iter(tfds.as_numpy(input_pipeline.train_dataset(
            builder, config, 0, batch_size,
            extra_features=model.extra_train_features()))))
        assert len(batch['length']) == batch_size
        # Pad the word axis so that every device's pairs of captions fit in
        # one row: the packed branch, not the unpacked fallback, runs.
        words = config.max_words
        padded = 2 * int(batch['length'].max())
        batch = {k: np.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, padded - words)])
                 if v.ndim >= 2 and v.shape[-1] == words else v
                 for k, v in batch.items()}
        assert all(jax.device_get(packed_gru.pair_rows(share, padded)[2])
                   for share in batch['length'].reshape(8, -1))
        results = []
        state = train.create_train_state(model, config, batch,
                                         sharding.data_mesh(jax.devices()[:1]))
        for devices in (jax.devices()[:1], jax.devices()):
          mesh = sharding.data_mesh(devices)
          state = jax.device_put(state, sharding.replicated(mesh))
          fn = jax.jit(sharding.on_mesh(functools.partial(
              train.loss_and_grads, model=model), mesh),
              in_shardings=(sharding.replicated(mesh),
                            sharding.replicated(mesh),
                            sharding.batch_sharded(mesh),
                            sharding.replicated(mesh)))
          global_batch = sharding.global_batch(batch, mesh)
          assert len(global_batch['frames'].sharding.device_set) == len(
              devices)
          (loss, _), grads = fn(state.params, state.batch_stats, global_batch,
                                jax.random.PRNGKey(7))
          results.append((float(loss), jax.device_get(grads)))
        (loss1, grads1), (loss8, grads8) = results
        label = f'{name} batch {batch_size}'
        np.testing.assert_allclose(loss8, loss1, rtol=1e-5, err_msg=label)
        for path, g1 in jax.tree_util.tree_leaves_with_path(grads1):
          g8 = functools.reduce(lambda t, k: t[k.key], path, grads8)
          np.testing.assert_allclose(
              g8, g1, rtol=2e-4, atol=2e-6,
              err_msg=f'{label} {jax.tree_util.keystr(path)}')
        print('loss_and_grads OK', label)

    for name in names:
      try:
        check(name, 32)
      except Exception:  # The other models still run and report.
        traceback.print_exc()
''')

# Score matrices over tiles that pad both axes, and binary selection, of a
# model on meshes of 1 and 4 devices. sys.argv[1:] = data dir, model names.
_EVAL_SCRIPT = textwrap.dedent('''
    import sys, traceback
    import jax, numpy as np
    import tensorflow_datasets as tfds
    sys.path.insert(0, 'tests')
    from conftest import tiny_config, train_element_spec
    from data_pipelines import input_pipeline
    from hgr_jax import binary_selection, evaluate, models, sharding, train

    data_dir, names = sys.argv[1], sys.argv[2:]

    def check(name):
      config = tiny_config(model=name, data_dir=data_dir)
      builder = input_pipeline.get_builder(config)
      model = models.create_model(config,
                                  len(input_pipeline.vocabulary(builder)))
      videos = list(tfds.as_numpy(input_pipeline.video_dataset(
          builder, 'test', config, 100)))
      captions = list(tfds.as_numpy(input_pipeline.caption_dataset(
          builder, 'test', 1000)))
      variables = jax.device_get(train.create_train_state(
          model, config, train_element_spec(config, model),
          sharding.data_mesh(jax.devices()[:1])).variables)
      results = []
      for devices in (1, 4):
        mesh = sharding.data_mesh(jax.devices()[:devices])
        # Batches of 12 (not a multiple of 8: encoders pad) and a budget
        # that cuts the split into several padded tiles.
        evaluator = evaluate.Evaluator(model, mesh, 12, memory_budget_gb=1e-4)
        encoded = evaluator.encode_videos(variables, videos)
        text = evaluator.encode_captions(variables, captions)
        tile = evaluator.tile_shape(variables, encoded, text)
        assert tile[1] % devices == 0 and tile[1] < 129, tile
        scores = evaluator.score_matrix(variables, encoded, text)
        scores.update(binary_selection.evaluate(evaluator, variables,
                                                builder, 'test', config))
        results.append(scores)
      for key, value in results[0].items():
        np.testing.assert_allclose(results[1][key], value, atol=1e-5,
                                   err_msg=f'{name} {key}')
      assert results[0]['binary_role_swap_pairs'] > 0
      print('scores OK', name)

    for name in names:
      try:
        check(name)
      except Exception:  # The other models still run and report.
        traceback.print_exc()
''')


def _run(script, devices, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') +
                      f' --xla_force_host_platform_device_count={devices}')
  return subprocess.run([sys.executable, '-c', script, *args], env=env,
                        capture_output=True, text=True, timeout=900)


MODELS = sorted(models.registry.MODELS)


# One test per subprocess: xdist may run another file's test between two
# tests of this one, which tears a module fixture down and runs it again.
def test_loss_and_grads_match_on_8_devices(tiny_data_dir):
  result = _run(_LOSS_AND_GRADS_SCRIPT, 8, tiny_data_dir, *MODELS)
  for name in MODELS:
    assert f'loss_and_grads OK {name} batch 32' in result.stdout, (
        name, result.stderr[-4000:])


def test_scores_and_binary_selection_match_on_4_devices(tiny_data_dir):
  result = _run(_EVAL_SCRIPT, 4, tiny_data_dir, *MODELS)
  for name in MODELS:
    assert f'scores OK {name}' in result.stdout, (name,
                                                  result.stderr[-4000:])
