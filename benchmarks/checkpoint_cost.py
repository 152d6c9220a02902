"""What a step checkpoint costs, to choose config.checkpoint_every_steps.

  python -m benchmarks.checkpoint_cost [--models=hgr,vsepp,hanet]
      [--hidden_size=1024] [--feature_dim=1024] [--vocab_size=10000]
      [--saves=5] [--skip_batches=200 --skip_videos=2000]
      [--out=checkpoint_cost.json]

Per model at the papers' width: the train state's size (parameters and
Adam's two moments), the seconds the training loop is held by
`CheckpointManager.save` (the copy off the devices; the write then runs in
the background) and the seconds until the checkpoint is committed, medians
over --saves saves into a temporary folder, and the size on disk.

With --skip_batches, also the cost of resuming mid-epoch with
config.pair_order='video_buffer': the seconds tf.data takes to read and
drop that many batches of 64 pairs of --skip_videos synthetic videos,
shuffled in a buffer of a tenth of them (the
'global' order starts at the batch without reading anything), and the
bytes a tf.data iterator checkpoint would hold instead (its shuffle
buffers).
"""

import json
import os
import statistics
import tempfile
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import tensorflow as tf

from configs import synthetic as synthetic_config
from data_pipelines import input_pipeline
from hgr_jax import models
from hgr_jax import platform
from hgr_jax import sharding
from hgr_jax import train

_MODELS = flags.DEFINE_list('models', ['hgr', 'vsepp', 'hanet'], 'Models.')
_HIDDEN = flags.DEFINE_integer('hidden_size', 1024,
                               'Width (the papers: 1024).')
_FEATURE_DIM = flags.DEFINE_integer('feature_dim', 1024,
                                    'Frame feature size (VATEX I3D: 1024).')
_VOCAB = flags.DEFINE_integer('vocab_size', 10_000,
                              'Word vocabulary size (ours: VATEX-like).')
_SAVES = flags.DEFINE_integer('saves', 5, 'Timed saves per model.')
_SKIP = flags.DEFINE_integer('skip_batches', 0,
                             'Batches to skip for the resume measurement '
                             '(0: skip it).')
_SKIP_VIDEOS = flags.DEFINE_integer(
    'skip_videos', 2000, 'Training videos of the resume measurement.')
_OUT = flags.DEFINE_string('out', 'checkpoint_cost.json', 'JSON output.')


def _config(model_name, train_videos=48):
  """The synthetic config at the measured width, on a dataset of
  `train_videos` training videos of --feature_dim features."""
  config = synthetic_config.get_config(model_name)
  config.model.hidden_size = _HIDDEN.value
  config.synthetic.update(dict(feature_dim=_FEATURE_DIM.value,
                               num_train_videos=train_videos,
                               num_validation_videos=16,
                               num_test_videos=16))
  return config


def _train_dataset(config, model=None):
  builder = input_pipeline.prepare(input_pipeline.get_builder(config))
  extra = model.extra_train_features() if model else None
  return builder, input_pipeline.train_dataset(builder, config, 0, 64,
                                               extra_features=extra)


def _random_like(tree):
  """Random floats in place of a tree's float leaves: Adam's moments start
  at zero, which compresses to nothing on disk, unlike a trained state's."""
  leaves, structure = jax.tree.flatten(tree)
  keys = jax.random.split(jax.random.PRNGKey(0), len(leaves))
  return jax.tree.unflatten(structure, [
      jax.random.normal(key, x.shape, x.dtype)
      if jnp.issubdtype(x.dtype, jnp.floating) else x
      for key, x in zip(keys, leaves)])


def _directory_bytes(path):
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names)


def save_cost(model_name):
  """Seconds per save of `model_name`'s train state (see the docstring)."""
  config = _config(model_name)
  model = models.create_model(config, _VOCAB.value)
  _, dataset = _train_dataset(config, model)
  state = train.create_train_state(model, config, dataset.element_spec,
                                   sharding.data_mesh())
  state = state.replace(opt_state=_random_like(state.opt_state))
  state_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
  params_bytes = sum(x.nbytes for x in jax.tree.leaves(state.params))
  held, committed = [], []
  with tempfile.TemporaryDirectory() as workdir:
    manager = train.checkpoint_manager(workdir, keep_latest=2)
    for step in range(1, _SAVES.value + 1):
      start = time.perf_counter()
      train.save(manager, step, state, epoch=0, batches=step)
      held.append(time.perf_counter() - start)
      manager.wait_until_finished()
      committed.append(time.perf_counter() - start)
    disk = _directory_bytes(os.path.join(workdir, 'checkpoints',
                                         str(_SAVES.value)))
  return dict(model=model_name, params_mb=params_bytes / 1e6,
              state_mb=state_bytes / 1e6, disk_mb=disk / 1e6,
              held_s=statistics.median(held),
              committed_s=statistics.median(committed))


def skip_cost():
  """Seconds to skip --skip_batches video_buffer batches, and the size of a
  tf.data iterator checkpoint of the same pipeline."""
  config = _config('hgr', _SKIP_VIDEOS.value)
  config.pair_order = 'video_buffer'
  # Below the split's size, as VATEX's 26k training videos exceed the
  # default 10k: skipped batches then read videos, as they would there.
  config.video_shuffle_buffer = _SKIP_VIDEOS.value // 10
  builder, dataset = _train_dataset(config)
  batches = lambda skip: iter(input_pipeline.epoch_batches(
      builder, config, 64)(0, skip))
  next(batches(0))  # Opens the files once, out of the timing.
  start = time.perf_counter()
  next(batches(_SKIP.value))
  skip_s = time.perf_counter() - start
  start = time.perf_counter()
  next(batches(0))
  first_s = time.perf_counter() - start
  iterator = iter(dataset)
  next(iterator)
  with tempfile.TemporaryDirectory() as folder:
    tf.train.Checkpoint(iterator=iterator).write(os.path.join(folder, 'it'))
    iterator_bytes = _directory_bytes(folder)
  videos = builder.info.splits['train'].num_examples
  return dict(skip_batches=_SKIP.value, skip_s=skip_s - first_s,
              s_per_skipped_batch=(skip_s - first_s) / _SKIP.value,
              train_videos=videos,
              video_shuffle_buffer=config.video_shuffle_buffer,
              iterator_checkpoint_mb=iterator_bytes / 1e6)


def main(argv):
  del argv
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  tf.config.set_visible_devices([], 'GPU')
  rows = [save_cost(name) for name in _MODELS.value]
  print(f'Step checkpoint cost, width {_HIDDEN.value}, features '
        f'{_FEATURE_DIM.value}, vocabulary {_VOCAB.value}, '
        f'{jax.devices()[0].platform}, median of {_SAVES.value} saves:')
  print('| model | params MB | state MB | on disk MB | loop held s | '
        'committed s |')
  print('|---|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['model']} | {r['params_mb']:.0f} | {r['state_mb']:.0f} | "
          f"{r['disk_mb']:.0f} | {r['held_s']:.2f} | {r['committed_s']:.2f} |")
  result = dict(hidden_size=_HIDDEN.value, feature_dim=_FEATURE_DIM.value,
                vocab_size=_VOCAB.value, platform=jax.devices()[0].platform,
                saves=rows)
  if _SKIP.value:
    result['resume'] = skip = skip_cost()
    print(f"video_buffer resume: skipping {skip['skip_batches']} batches took "
          f"{skip['skip_s']:.1f} s ({1e3 * skip['s_per_skipped_batch']:.1f} "
          f"ms per batch); a tf.data iterator checkpoint of the pipeline "
          f"({skip['train_videos']} videos) holds "
          f"{skip['iterator_checkpoint_mb']:.0f} MB.")
  with open(_OUT.value, 'w') as f:
    json.dump(result, f, indent=2)


if __name__ == '__main__':
  app.run(main)
