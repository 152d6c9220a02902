r"""How HCMI's levels should be fused: rsum of weightings, on a trained run.

  python -m benchmarks.hcmi_fusion --config=configs/synthetic.py:hcmi \
      --workdir=/tmp/hcmi [--config.* as the run was trained] [--step=N] \
      [--grid=10] [--out=fusion.json]

Restores the run's best checkpoint (or --step), scores the validation and
test splits once per level, and ranks by weighted means of the levels'
scores: every weighting on a grid of the simplex (weights in multiples of
1/--grid), the equal mean, the mean weighted by the levels' learned logit
scales (`config.model.fuse_logits`), and each level alone. Prints the
validation rsum of each named weighting, of the grid's best, and the test
rsum of each, so that a weighting is chosen on validation and only then
read on test.
"""

import itertools
import json

from absl import app
from absl import flags
import jax
from ml_collections import config_flags
import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import input_pipeline
from hgr_jax import evaluate
from hgr_jax import metrics as metrics_lib
from hgr_jax import sharding
from hgr_jax import train

_CONFIG = config_flags.DEFINE_config_file('config', None, "The run's config.")
_WORKDIR = flags.DEFINE_string('workdir', None, "The run's workdir.",
                               required=True)
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step; default: best.')
_GRID = flags.DEFINE_integer('grid', 10, 'Weights are multiples of 1/grid.')
_OUT = flags.DEFINE_string('out', None, 'JSON output path (optional).')


def simplex_grid(num_levels, steps):
  """Every weighting of `num_levels` levels in multiples of 1/steps that
  sums to 1, as tuples."""
  return [tuple(c / steps for c in counts)
          for counts in itertools.product(range(steps + 1),
                                          repeat=num_levels)
          if sum(counts) == steps]


def fused_rsum(scores, weights, rank):
  """rsum of the `weights` ({level: w}) mean of the level `scores`."""
  total = sum(weights.values())
  fused = sum(w * scores[level] for level, w in weights.items()) / total
  return rank(fused)['rsum']


def split_scores(evaluator, variables, builder, split, config):
  """({level: (videos, captions) scores}, rank function) of `split`."""
  videos = evaluator.encode_videos(variables, tfds.as_numpy(
      input_pipeline.video_dataset(builder, split, config,
                                   evaluator.batch_size)))
  batches = list(tfds.as_numpy(input_pipeline.caption_dataset(
      builder, split, evaluator.batch_size)))
  captions = evaluator.encode_captions(variables, batches)
  scores = evaluator.score_matrix(variables, videos, captions)
  caption_video = np.concatenate([b['video_index'] for b in batches])
  sentences = np.concatenate([b['text'] for b in batches])
  rank = lambda s: metrics_lib.retrieval_metrics(
      s, caption_video=caption_video, protocol=config.eval_protocol,
      sentences=sentences)
  return {k: v for k, v in scores.items() if k != 'fused'}, rank


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  builder, model, mesh = train.setup(config)
  element_spec = train.train_batches(builder, model, config, 0,
                                     config.batch_size).element_spec
  state = train.create_train_state(model, config, element_spec, mesh)
  manager = train.checkpoint_manager(_WORKDIR.value)
  step = _STEP.value if _STEP.value is not None else manager.best_step()
  state, _ = train.restore(manager, step, state)
  variables = jax.device_get(state.variables)
  evaluator = evaluate.Evaluator(model, sharding.data_mesh(),
                                 config.eval_batch_size,
                                 config.eval_memory_budget_gb,
                                 config.eval_bfloat16)
  levels = list(model.levels)
  scales = model.apply(variables, method=model.level_logit_scales)
  named = {'equal': {level: 1.0 for level in levels},
           'logit scales': {level: float(scales[level]) for level in levels},
           **{f'{level} alone': {level: 1.0} for level in levels}}
  validation, rank_validation = split_scores(evaluator, variables, builder,
                                             'validation', config)
  grid = {w: fused_rsum(validation, dict(zip(levels, w)), rank_validation)
          for w in simplex_grid(len(levels), _GRID.value) if any(w)}
  best = max(grid, key=grid.get)
  named['grid best on validation'] = dict(zip(levels, best))
  test, rank_test = split_scores(evaluator, variables, builder, 'test',
                                 config)
  rows = {name: dict(weights=weights,
                     validation=fused_rsum(validation, weights,
                                           rank_validation),
                     test=fused_rsum(test, weights, rank_test))
          for name, weights in named.items()}
  print(f'{_WORKDIR.value}, checkpoint step {step}; weights over '
        f'{", ".join(levels)}:')
  print(f'{"fusion":>26} {"weights":>24} {"validation":>10} {"test":>7}')
  for name, row in rows.items():
    weights = ' '.join(f'{row["weights"].get(level, 0.0):.2f}'
                       for level in levels)
    print(f'{name:>26} {weights:>24} {row["validation"]:>10.1f} '
          f'{row["test"]:>7.1f}')
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(dict(step=int(step), levels=levels, rows=rows,
                     grid={' '.join(map(str, w)): v for w, v in grid.items()}),
                f, indent=2)


if __name__ == '__main__':
  app.run(main)
