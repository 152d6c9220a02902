r"""What a training run of HCMI did, epoch by epoch: docs/hcmi.md's diagnosis.

  python -m benchmarks.hcmi_diagnosis --config=configs/synthetic.py:hcmi \
      --workdir=/tmp/hcmi [--config.* as the run was trained] \
      [--grad_batches=4] [--out=diagnosis.json]

Reads the run's logged scalars (`hgr_jax.summaries`) and prints, per
epoch: validation rsum of the fused score and of each level, the learned
logit scale(s) (1 / temperature; the cap is config.model.max_logit_scale),
ALD's mean positives per row and the training losses, averaged over the
epoch's logged steps. Then the gradient norm of each module (the parameter
tree two levels deep) on --grad_batches fixed training batches (the first
of epoch 0), at initialisation and at every checkpoint the run kept
(train with --config.keep_checkpoints at least the number of epochs to
keep every epoch end). Works for any model of the project. For a run of
`benchmarks.hcmi_ablations`, pass --diagnose there instead: it knows each
run's config.
"""

import collections
import json
import os

from absl import app
from absl import flags
import flax
import jax
import numpy as np
import optax
from ml_collections import config_flags

from data_pipelines import input_pipeline
from data_pipelines import length_buckets
from hgr_jax import summaries
from hgr_jax import train

FLAGS = flags.FLAGS


def _define_flags():
  """The command line's flags, defined when run: benchmarks.hcmi_ablations
  imports `diagnose` beside its own --config and --workdir."""
  config_flags.DEFINE_config_file('config', None, "The run's config.")
  flags.DEFINE_string('workdir', None, "The run's workdir.", required=True)
  flags.DEFINE_integer('grad_batches', 4, 'Training batches the gradient '
                       'norms average over.')
  flags.DEFINE_string('out', None, 'JSON output path (optional).')


def epoch_table(series, steps_per_epoch):
  """Per-epoch rows from the run's scalar series.

  Args:
    series: `summaries.read_scalars` of the run.
    steps_per_epoch: training steps per epoch.

  Returns:
    list of {name: value}: epoch, every val_*rsum at the epoch's end, and the
    mean of every train_* scalar logged during the epoch.
  """
  rows = []
  if 'val_rsum' not in series:
    return rows
  for step in series['val_rsum'][0]:
    epoch = int(round(step / steps_per_epoch))
    row = {'epoch': epoch}
    for tag, (steps, values) in series.items():
      if tag.startswith('val_') and tag.endswith('rsum'):
        row[tag[len('val_'):]] = float(values[steps == step][0])
      elif tag.startswith('train_'):
        inside = (steps > step - steps_per_epoch) & (steps <= step)
        if inside.any():
          row[tag[len('train_'):]] = float(values[inside].mean())
    rows.append(row)
  return rows


def module_norms(grads, depth=2):
  """{'a/b': global norm of the gradient subtree at that path}."""
  flat = flax.traverse_util.flatten_dict(grads)
  groups = collections.defaultdict(list)
  for path, value in flat.items():
    groups['/'.join(str(p) for p in path[:depth])].append(value)
  return {name: float(optax.global_norm(values))
          for name, values in sorted(groups.items())}


def gradient_norms(config, workdir, num_batches):
  """Per-module gradient norms at initialisation and at each kept checkpoint.

  Returns:
    {step: {module: mean norm over the batches}}.
  """
  builder, model, mesh = train.setup(config)
  element_spec = train.train_batches(builder, model, config, 0,
                                     config.batch_size).element_spec
  state = train.create_train_state(model, config, element_spec, mesh)
  batches_of_epoch = input_pipeline.epoch_batches(
      builder, config, config.batch_size,
      extra_features=model.extra_train_features())
  buckets = train.word_buckets(config)
  batches = [length_buckets.trim_to_bucket(batch, buckets)
             for _, batch in zip(range(num_batches), batches_of_epoch(0))]
  grad_fn = jax.jit(lambda params, stats, batch, rng: train.loss_and_grads(
      params, stats, batch, rng, model)[1])

  def norms(state):
    per_batch = [module_norms(grad_fn(state.params, state.batch_stats,
                                      batch, jax.random.PRNGKey(i)))
                 for i, batch in enumerate(batches)]
    return {k: float(np.mean([n[k] for n in per_batch]))
            for k in per_batch[0]}

  out = {0: norms(state)}
  manager = train.checkpoint_manager(workdir)
  for step in manager.all_steps():
    restored, _ = train.restore(manager, step, state)
    out[int(step)] = norms(restored)
  return out


def format_rows(rows, keys):
  """Rows of dicts -> a fixed-width table of `keys` (missing: '-')."""
  width = max(10, *(len(k) for k in keys))
  lines = [' '.join(f'{k:>{width}}' for k in keys)]
  for row in rows:
    lines.append(' '.join(
        f'{row[k]:>{width}.{0 if k in ("epoch", "step") else 3}f}'
        if k in row else f'{"-":>{width}}' for k in keys))
  return '\n'.join(lines)


def diagnose(config, workdir, grad_batches):
  """The epoch table and the gradient norms of one run, printed and
  returned as a dict."""
  builder, _, _ = train.setup(config)
  steps_per_epoch = input_pipeline.steps_per_epoch(builder,
                                                   config.batch_size)
  rows = epoch_table(summaries.read_scalars(workdir), steps_per_epoch)
  keys = ['epoch'] + sorted({k for r in rows for k in r if k.endswith('rsum')},
                            key=lambda k: (k != 'rsum', k))
  keys += sorted({k for r in rows for k in r
                  if k.startswith('loss_') or k == 'grad_norm'})
  print(f'{workdir}: per epoch (validation rsums at its end; train_* means '
        'over its logged steps)')
  print(format_rows(rows, keys))
  grads = gradient_norms(config, workdir, grad_batches)
  modules = sorted({m for n in grads.values() for m in n})
  print(f'Gradient norm per module (mean over {grad_batches} batches of '
        'epoch 0), by checkpoint step:')
  print(format_rows([{'step': s, **n} for s, n in sorted(grads.items())],
                    ['step'] + modules))
  return {'epochs': rows, 'gradient_norms': grads}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  result = diagnose(FLAGS.config, FLAGS.workdir, FLAGS.grad_batches)
  if FLAGS.out:
    with open(FLAGS.out, 'w') as f:
      json.dump(result, f, indent=2, sort_keys=True)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
