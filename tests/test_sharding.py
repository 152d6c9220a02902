"""The train step on 8 (forced) CPU devices equals the one-device step."""

import os
import subprocess
import sys
import textwrap

import pytest

_LOSS_AND_GRADS_SCRIPT = textwrap.dedent('''
    import functools, sys
    import jax, numpy as np
    import tensorflow_datasets as tfds
    sys.path.insert(0, 'tests')
    from conftest import tiny_config
    from data_pipelines import input_pipeline
    from hgr_jax import models, sharding, train

    assert jax.device_count() == 8, jax.devices()
    config = tiny_config(model=sys.argv[1], data_dir=sys.argv[2])
    builder = input_pipeline.get_builder(config)
    model = models.create_model(config, len(input_pipeline.vocabulary(builder)))
    batch = next(iter(tfds.as_numpy(input_pipeline.train_dataset(
        builder, config, 0, config.batch_size,
        extra_features=model.extra_train_features()))))
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
      mesh = sharding.data_mesh(devices)
      state = train.create_train_state(model, config, batch, mesh)
      fn = jax.jit(functools.partial(train.loss_and_grads, model=model),
                   in_shardings=(sharding.replicated(mesh),
                                 sharding.replicated(mesh),
                                 sharding.batch_sharded(mesh),
                                 sharding.replicated(mesh)))
      global_batch = sharding.global_batch(batch, mesh)
      assert len(global_batch['frames'].sharding.device_set) == len(devices)
      (loss, _), grads = fn(state.params, state.batch_stats, global_batch,
                            jax.random.PRNGKey(7))
      results.append((float(loss), jax.device_get(grads)))
    (loss1, grads1), (loss8, grads8) = results
    np.testing.assert_allclose(loss8, loss1, rtol=1e-5)
    for path, g1 in jax.tree_util.tree_leaves_with_path(grads1):
      g8 = functools.reduce(lambda t, k: t[k.key], path, grads8)
      np.testing.assert_allclose(g8, g1, rtol=2e-4, atol=2e-6,
                                 err_msg=jax.tree_util.keystr(path))
''')


_EVAL_SCRIPT = textwrap.dedent('''
    import sys
    import jax, numpy as np
    import tensorflow_datasets as tfds
    sys.path.insert(0, 'tests')
    from conftest import tiny_config, train_element_spec
    from data_pipelines import input_pipeline
    from hgr_jax import evaluate, models, sharding, train

    assert jax.device_count() == 8, jax.devices()
    config = tiny_config(model=sys.argv[1], data_dir=sys.argv[2])
    builder = input_pipeline.get_builder(config)
    model = models.create_model(config, len(input_pipeline.vocabulary(builder)))
    videos = list(tfds.as_numpy(input_pipeline.video_dataset(
        builder, 'test', config, 100)))
    captions = list(tfds.as_numpy(input_pipeline.caption_dataset(
        builder, 'test', 1000)))
    params = None
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
      mesh = sharding.data_mesh(devices)
      if params is None:
        params = jax.device_get(
            train.create_train_state(model, config,
                                     train_element_spec(config, model),
                                     mesh).variables)
      evaluator = evaluate.Evaluator(model, mesh, 8, memory_budget_gb=1e-4)
      encoded = evaluator.encode_videos(params, videos)
      text = evaluator.encode_captions(params, captions)
      tile = evaluator.tile_shape(params, encoded, text)
      assert tile[1] % len(devices) == 0 and tile[1] < 129, tile
      scores = evaluator.score_matrix(params, encoded, text)
      results.append(scores)
    for level in results[0]:
      np.testing.assert_allclose(results[1][level], results[0][level],
                                 atol=1e-5, err_msg=level)
''')

# Each runs as a script: sys.argv[1:] = model name, data dir.
_CHECKS = {'loss_and_grads': _LOSS_AND_GRADS_SCRIPT, 'scores': _EVAL_SCRIPT}


@pytest.fixture(scope='module')
def eight_device_run(tiny_data_dir):
  """(stdout, stderr) of one 8-device process running every check of _CHECKS
  on HGR: one interpreter, dataset and set of compilations for both tests."""
  runner = textwrap.dedent(f'''
      import sys, traceback
      import hgr_jax
      for name, source in {_CHECKS!r}.items():
        try:
          exec(source, {{'__name__': '__main__'}})
        except Exception:  # The other checks still run and report.
          traceback.print_exc()
        else:
          print(name + ': OK')
  ''')
  env = dict(os.environ)
  env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') +
                      ' --xla_force_host_platform_device_count=8').strip()
  env['JAX_PLATFORMS'] = 'cpu'
  result = subprocess.run([sys.executable, '-c', runner, 'hgr',
                           tiny_data_dir], env=env, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout, result.stderr


def test_hgr_loss_and_grads_match_across_8_devices(eight_device_run):
  stdout, stderr = eight_device_run
  assert 'loss_and_grads: OK' in stdout, stderr[-3000:]


def test_hgr_scores_match_across_8_devices(eight_device_run):
  stdout, stderr = eight_device_run
  assert 'scores: OK' in stdout, stderr[-3000:]
