r"""HCMI's ablations and loss/architecture cross-checks: docs/hcmi.md's tables.

  python -m benchmarks.hcmi_ablations --workdir=/tmp/hcmi_ablations \
      --runs=hcmi,paper,vsepp,vsepp_info_nce [--seeds=1] \
      [--config=configs/synthetic.py] [--config.num_epochs=3 ...]

Trains each named run of `RUNS` (a model variant of the config file and
overrides of its config.model) with seeds 0..N-1, as
`benchmarks.compare_models` does (same workdir layout, finished runs
reused), and prints per run: the validation rsum of the fused score and of
each level after every epoch (seed 0), and the test rsums of the best
checkpoint, mean over seeds. Also writes WORKDIR/hcmi_ablations.json and
WORKDIR/hcmi_ablations.md.

`vsepp_info_nce` is VSE++ trained with HCMI's loss (symmetric InfoNCE, a
learned temperature, other captions of the same video positive), the
cross-check that separates HCMI's loss from its architecture; it is
registered here, not in the library.
"""

import json
import math
import os

from absl import app
from absl import flags
import flax.linen as nn
import jax.numpy as jnp

from benchmarks import compare_models
from benchmarks import hcmi_diagnosis
from hgr_jax import contrastive_losses
from hgr_jax import summaries
from hgr_jax.models import hcmi
from hgr_jax.models import registry
from hgr_jax.models import vsepp

# --config, --workdir and --seeds are compare_models' flags.
FLAGS = flags.FLAGS
_RUNS = flags.DEFINE_list('runs', None, 'Names of RUNS to train.',
                          required=True)
_DIAGNOSE = flags.DEFINE_bool(
    'diagnose', False, "Also print and store each run's diagnosis (seed 0): "
    'benchmarks.hcmi_diagnosis; train with --config.keep_checkpoints at '
    'least --config.num_epochs for its per-epoch gradient norms.')

# The options of HCMI's paper config (`HCMI.paper_config`, the paper as we
# read it) that the config under test may change.
OPTIONS = ('temporal_layers', 'level_loss', 'mse_weight',
           'per_level_temperature', 'temperature_lr_multiplier',
           'match_softmax_scale', 'aggregation', 'global_pooling',
           'clip_segments', 'fusion_weights')


def _paper(**changes):
  paper = hcmi.HCMI.paper_config().model
  return ('hcmi', 'hcmi', {**{k: paper[k] for k in OPTIONS}, **changes})


def _hcmi(**changes):
  return ('hcmi', 'hcmi', changes)


# Run name -> (config variant, model name, config.model overrides). `hcmi`
# is the config's HCMI; the other hcmi_* runs change one thing of it.
RUNS = {
    'hcmi': _hcmi(),
    'paper': _paper(),
    'paper_hinge': _paper(level_loss='hinge', mse_weight=0.0),
    'vsepp': ('vsepp', 'vsepp', {}),
    # Loss against architecture.
    'vsepp_info_nce': ('vsepp', 'vsepp_info_nce', {}),
    'hcmi_info_nce': _hcmi(level_loss='info_nce', mse_weight=1.0),
    'hcmi_frame_word': _hcmi(levels=('frame_word',)),
    'hcmi_video_sentence': _hcmi(levels=('video_sentence',)),
    # Architecture, one change each.
    'hcmi_max_match': _hcmi(match_softmax_scale=None),
    'hcmi_attention_pooling': _hcmi(global_pooling='attention'),
    'hcmi_transformer_aggregation': _hcmi(aggregation='transformer'),
    'hcmi_no_segments': _hcmi(clip_segments=False),
    'hcmi_shared_temperature': _hcmi(per_level_temperature=False,
                                     temperature_lr_multiplier=1.0),
    'hcmi_temporal_layer': _hcmi(temporal_layers=1),
    'hcmi_no_temporal_layer': _hcmi(temporal_layers=0),
    'hcmi_no_ald': _hcmi(use_ald=False),
}

SUMMARY_FILE = 'hcmi_ablations.json'
DIAGNOSIS_FILE = 'diagnosis.json'
MARKDOWN_FILE = 'hcmi_ablations.md'


@registry.register('vsepp_info_nce')
class VSEPPInfoNCE(vsepp.VSEPP):
  """VSE++ with HCMI's loss: symmetric multi-positive InfoNCE on its
  cosine, a learned CLIP-style temperature, captions of one video
  positives of each other (HCMI's `same_video_positive`)."""
  initial_temperature: float = 0.07
  max_logit_scale: float = 100.0

  def setup(self):
    super().setup()
    self.log_logit_scale = self.param(
        'log_logit_scale',
        nn.initializers.constant(math.log(1 / self.initial_temperature)), ())

  def loss(self, outputs, batch):
    """(InfoNCE, {'fused': it, 'logit_scale': the inverse temperature})."""
    same_video = batch['video_key'][:, None] == batch['video_key'][None, :]
    scale = jnp.minimum(jnp.exp(self.log_logit_scale), self.max_logit_scale)
    loss = contrastive_losses.symmetric_info_nce(outputs['scores']['fused'],
                                                 same_video, scale)
    return loss, {'fused': loss, 'logit_scale': scale}


def run_config(config_module, name, overrides):
  """The config of run `name`: its variant with the command line's
  overrides, then the run's own."""
  variant, model_name, model_overrides = RUNS[name]
  config = compare_models.model_config(config_module, variant, overrides)
  config.model_name = model_name
  config.model.update(model_overrides)
  return config


def validation_curves(workdir):
  """{'rsum': [per epoch], '<level>_rsum': [...]} of a run's validation."""
  series = summaries.read_scalars(workdir)
  return {tag[len('val_'):]: [round(float(v), 1) for v in values]
          for tag, (_, values) in series.items()
          if tag.startswith('val_') and tag.endswith('rsum')}


def _level(key):
  return 'fused' if key == 'rsum' else key[:-len('_rsum')]


def markdown(summary):
  """{run: {'curves', 'mean', 'std', 'seeds'}} -> a Markdown table."""
  levels = ['rsum'] + sorted({k for s in summary.values() for k in s['mean']
                              if k.endswith('_rsum') and k != 'rsum'})
  lines = ['| run | seeds | validation rsum per epoch (seed 0) | '
           + ' | '.join(f'test {_level(k)}' for k in levels) + ' |',
           '|---' * (len(levels) + 3) + '|']
  for name, s in summary.items():
    cell = lambda k: ('-' if k not in s['mean'] else
                      f"{s['mean'][k]:.1f}" if len(s['seeds']) == 1 else
                      f"{s['mean'][k]:.1f} ± {s['std'][k]:.1f}")
    curve = ', '.join(f'{v:.0f}' for v in s['curves'].get('rsum', []))
    lines.append(f"| {name} | {len(s['seeds'])} | {curve} | "
                 + ' | '.join(cell(k) for k in levels) + ' |')
  return '\n'.join(lines) + '\n'


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  unknown = set(_RUNS.value) - set(RUNS)
  if unknown:
    raise app.UsageError(f'--runs: unknown {sorted(unknown)}; known: '
                         f'{", ".join(RUNS)}.')
  config_path = FLAGS['config'].config_filename.partition(':')[0]
  config_module = compare_models.load_config_module(config_path)
  overrides = compare_models.command_line_overrides()
  # Runs summarised by an earlier call with this workdir stay in the table.
  summary_path = os.path.join(FLAGS.workdir, SUMMARY_FILE)
  summary = {}
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      summary = json.load(f)
  for name in _RUNS.value:
    per_seed = {}
    for seed in range(FLAGS.seeds):
      config = run_config(config_module, name, overrides)
      config.seed = seed
      workdir = os.path.join(FLAGS.workdir, name, f'seed_{seed}')
      per_seed[seed], _ = compare_models.run(config, workdir)
    if _DIAGNOSE.value:
      config = run_config(config_module, name, overrides)
      diagnosis = hcmi_diagnosis.diagnose(
          config, os.path.join(FLAGS.workdir, name, 'seed_0'), 4)
      with open(os.path.join(FLAGS.workdir, name, DIAGNOSIS_FILE), 'w') as f:
        json.dump(diagnosis, f, indent=2, sort_keys=True)
    mean, std = compare_models.mean_std(per_seed)
    curves = validation_curves(os.path.join(FLAGS.workdir, name, 'seed_0'))
    summary[name] = dict(seeds=per_seed, mean=mean, std=std, curves=curves)
    print(f'{name}: validation per epoch (seed 0): '
          + '; '.join(f'{_level(k)} {v}' for k, v in sorted(curves.items()))
          + '\n  test: ' + ', '.join(f'{_level(k)} {v:.1f}'
                                     for k, v in sorted(mean.items())
                                     if k.endswith('rsum')))
  table = markdown(summary)
  print(table)
  with open(summary_path, 'w') as f:
    json.dump(summary, f, indent=2, sort_keys=True)
  with open(os.path.join(FLAGS.workdir, MARKDOWN_FILE), 'w') as f:
    f.write(table)


if __name__ == '__main__':
  app.run(main)
