"""Every model on one dataset, several seeds each: the README's results table.

  python -m benchmarks.compare_models --workdir=/tmp/compare --seeds=3 \
      [--models=hgr,vsepp,hanet] [--config=configs/synthetic.py] \
      [--config.num_epochs=2 --config.synthetic.num_train_videos=200 ...]

Trains each model (default: every registered one) with seeds 0..N-1 in
config.seed (model init, dropout and data order; the dataset, set by its own
fields such as config.synthetic.seed, stays fixed) and tests its best
checkpoint. Each (model, seed) runs in WORKDIR/<model>/seed_<seed>; a run
whose test_metrics.json exists is reused, an interrupted one resumes from its
checkpoint. Prints the mean ± sample std over seeds of rsum, of each level's
rsum and of the binary selection accuracies, and writes
WORKDIR/compare_models.json with every seed's metrics and the mean and std.

--config names the config file; each model gets its `:model` variant, and
every --config.* override given on the command line is applied to each
model's config that has that field.

--ablations adds three HCMI runs (`HCMI_ABLATIONS`): without ALD, without
L_mse, and with the video-sentence level alone, each with --ablation_seeds
seeds (default: --seeds).

Also writes WORKDIR/compare_models.md, the README's Markdown tables (recall,
rsum and level rsums; binary selection; HCMI ablations) of the same numbers.
"""

import importlib.util
import json
import os
import time

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags
import numpy as np

from hgr_jax import binary_selection
from hgr_jax import metrics as metrics_lib
from hgr_jax import models
from hgr_jax import platform
from hgr_jax import train

FLAGS = flags.FLAGS
_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/synthetic.py',
    'Config file; each model gets its variant, with the --config.* overrides.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Root of the runs.',
                               required=True)
_MODELS = flags.DEFINE_list('models', None,
                            'Models to compare; default: every registered one.')
_SEEDS = flags.DEFINE_integer('seeds', 1, 'Seeds per model: 0 .. seeds-1.')
_ABLATIONS = flags.DEFINE_bool(
    'ablations', False, 'Also train the HCMI ablations of HCMI_ABLATIONS.')
_ABLATION_SEEDS = flags.DEFINE_integer(
    'ablation_seeds', None, 'Seeds per ablation; default: --seeds.')

# Run name -> config.model overrides of the config file's :hcmi variant.
HCMI_ABLATIONS = {
    'hcmi_no_ald': dict(use_ald=False),
    'hcmi_no_mse': dict(mse_weight=0.0),
    'hcmi_video_sentence': dict(levels=('video_sentence',)),
}

SUMMARY_FILE = 'compare_models.json'
MARKDOWN_FILE = 'compare_models.md'
RUN_FILE = 'wall_seconds.json'


def load_config_module(path):
  """The Python module of config file `path` (e.g. configs/synthetic.py)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'--config={path}: no such config file.')
  spec = importlib.util.spec_from_file_location('compared_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def model_config(config_module, model, overrides):
  """The config file's `model` variant with `overrides` ({path: value}) set
  where the config has the field."""
  config = config_module.get_config(model)
  for path, value in overrides.items():
    parent, _, field = path.rpartition('.')
    node = config
    for part in filter(None, parent.split('.')):
      node = node.get(part) if node is not None and part in node else None
    if node is not None and field in node:
      setattr(node, field, value)
    else:
      logging.warning('%s has no config.%s; override not applied.', model,
                      path)
  return config


def command_line_overrides():
  """{field path: value} of every --config.* flag given on the command line."""
  out = {}
  for name in FLAGS:
    if name.startswith('config.') and FLAGS[name].present:
      path = name[len('config.'):]
      node = _CONFIG.value
      for part in path.split('.'):
        node = node[part]
      out[path] = node
  return out


def run(config, workdir):
  """Test metrics of one (model, seed) run, training it unless it finished.

  Returns:
    (metrics dict, wall seconds of its training and testing or None).
  """
  metrics_path = os.path.join(workdir, train.TEST_METRICS_FILE)
  run_path = os.path.join(workdir, RUN_FILE)
  if not os.path.exists(metrics_path):
    start = time.time()
    train.train_and_evaluate(config, workdir)
    with open(run_path, 'w') as f:
      json.dump({'wall_seconds': time.time() - start}, f)
  with open(metrics_path) as f:
    metrics = json.load(f)
  wall = None
  if os.path.exists(run_path):
    with open(run_path) as f:
      wall = json.load(f)['wall_seconds']
  return metrics, wall


def summary_keys(metrics):
  """The keys the table reports: rsum, each level's rsum, binary accuracies."""
  levels = sorted(k for k in metrics if k.endswith('_rsum'))
  binary = [f'binary_{t}' for t in binary_selection.TYPES
            if f'binary_{t}' in metrics]
  return ['rsum'] + levels + binary


def mean_std(per_seed):
  """{seed: metrics} -> ({key: mean}, {key: sample std, 0 for one seed}) over
  the numeric keys every seed has."""
  keys = set.intersection(*(set(m) for m in per_seed.values()))
  mean, std = {}, {}
  for key in sorted(keys):
    values = [m[key] for m in per_seed.values()]
    if all(isinstance(v, (int, float)) for v in values):
      mean[key] = float(np.mean(values))
      std[key] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
  return mean, std


def format_table(summary):
  """{model: {'mean', 'std', 'seeds'}} -> rows of metrics, a column each
  model, cells 'mean ± std'."""
  names = list(summary)
  keys = []
  for name in names:
    keys += [k for k in summary_keys(summary[name]['mean']) if k not in keys]
  cell = lambda s, k: (f"{s['mean'][k]:.1f} ± {s['std'][k]:.1f}"
                       if k in s['mean'] else '-')
  width = max(len(k) for k in keys + ['seeds'])
  columns = max(14, *(len(n) for n in names))
  lines = ['  '.join([f"{'':<{width}}"] + [f'{n:>{columns}}' for n in names]),
           '  '.join([f"{'seeds':<{width}}"] + [
               f"{len(summary[n]['seeds']):>{columns}}" for n in names])]
  for key in keys:
    lines.append('  '.join([f'{key:<{width}}'] + [
        f'{cell(summary[n], key):>{columns}}' for n in names]))
  return '\n'.join(lines)


def _mean_std_cell(summary, key):
  """'mean ± std' of `key` in one model's summary ('mean' alone for one
  seed), '-' when the model lacks it."""
  if key not in summary['mean']:
    return '-'
  if len(summary['seeds']) == 1:
    return f"{summary['mean'][key]:.1f}"
  return f"{summary['mean'][key]:.1f} ± {summary['std'][key]:.1f}"


def _level_name(key):
  """'concept_noun_rsum' -> 'concept-noun'."""
  return key[:-len('_rsum')].replace('_', '-')


def markdown_tables(summary, ablations=()):
  """{run name: {'mean', 'std', 'seeds'}} -> the README's Markdown tables.

  Recall@K and MedR are means over seeds; rsum, level rsums and binary
  accuracies are 'mean ± sample std'. Runs named in `ablations` get a table
  of their own (next to the run they ablate, if present).
  """
  recall = ('t2v_r1', 't2v_r5', 't2v_r10', 't2v_medr', 'v2t_r1', 'v2t_r5',
            'v2t_r10', 'v2t_medr')
  lines = ['| model | seeds | t2v R@1 | R@5 | R@10 | MedR | v2t R@1 | R@5 '
           '| R@10 | MedR | rsum | level rsums |',
           '|---' * 12 + '|']
  main_runs = [n for n in summary if n not in ablations]
  for name in main_runs:
    s = summary[name]
    levels = [k for k in summary_keys(s['mean'])
              if k.endswith('_rsum') and k != 'rsum']
    lines.append('| ' + ' | '.join(
        [name, str(len(s['seeds']))]
        + [f"{s['mean'][k]:.1f}" if k in s['mean'] else '-' for k in recall]
        + [f'**{_mean_std_cell(s, "rsum")}**',
           ', '.join(f'{_level_name(k)} {_mean_std_cell(s, k)}'
                     for k in levels)]) + ' |')
  types = [t for t in binary_selection.TYPES
           if any(f'binary_{t}' in summary[n]['mean'] for n in main_runs)]
  if types:
    lines += ['', '| model | ' + ' | '.join(t.replace('_', ' ')
                                           for t in types) + ' |',
              '|---' * (len(types) + 1) + '|']
    lines += ['| ' + ' | '.join([n] + [_mean_std_cell(summary[n],
                                                      f'binary_{t}')
                                       for t in types]) + ' |'
              for n in main_runs]
  ablated = [n for n in summary if n in ablations]
  if ablated:
    rows = (['hcmi'] if 'hcmi' in summary else []) + ablated
    keys = ['rsum'] + [k for k in summary_keys(summary[rows[0]]['mean'])
                       if k.endswith('_rsum') and k != 'rsum'] + [
                           'binary_role_swap']
    lines += ['', '| run | seeds | ' + ' | '.join(
        k.replace('_rsum', '').replace('_', ' ') if k != 'rsum' else 'rsum'
        for k in keys) + ' |', '|---' * (len(keys) + 2) + '|']
    lines += ['| ' + ' | '.join([n, str(len(summary[n]['seeds']))] + [
        _mean_std_cell(summary[n], k) for k in keys]) + ' |' for n in rows]
  return '\n'.join(lines) + '\n'


def main(argv):
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config_path = FLAGS['config'].config_filename.partition(':')[0]
  config_module = load_config_module(config_path)
  overrides = command_line_overrides()
  names = _MODELS.value or list(models.registry.MODELS)
  # (run name, model variant, config.model overrides).
  runs = [(name, name, {}) for name in names]
  if _ABLATIONS.value:
    runs += [(name, 'hcmi', ablation)
             for name, ablation in HCMI_ABLATIONS.items()]
  summary = {}
  ablation_seeds = _ABLATION_SEEDS.value or _SEEDS.value
  for name, variant, ablation in runs:
    per_seed, walls = {}, {}
    for seed in range(ablation_seeds if ablation else _SEEDS.value):
      config = model_config(config_module, variant, overrides)
      config.model.update(ablation)
      config.seed = seed
      per_seed[seed], walls[seed] = run(
          config, os.path.join(_WORKDIR.value, name, f'seed_{seed}'))
    mean, std = mean_std(per_seed)
    summary[name] = dict(seeds=per_seed, wall_seconds=walls, mean=mean,
                         std=std)
  means = {name: s['mean'] for name, s in summary.items()}
  print(f'{config_path}, test split, {_SEEDS.value} seed(s), '
        f'{jax.device_count()} {jax.devices()[0].platform} device(s), '
        f'{os.cpu_count()} cores.\nMean over seeds:\n'
        f'{metrics_lib.format_table(means)}\n'
        f'Mean ± sample std over seeds:\n{format_table(summary)}')
  with open(os.path.join(_WORKDIR.value, SUMMARY_FILE), 'w') as f:
    json.dump(summary, f, indent=2, sort_keys=True)
  with open(os.path.join(_WORKDIR.value, MARKDOWN_FILE), 'w') as f:
    f.write(markdown_tables(summary, ablations=HCMI_ABLATIONS))


if __name__ == '__main__':
  app.run(main)
