"""HGR, VSE++, HANet and HCMI on the synthetic test split: the README's
results table.

  python -m benchmarks.compare_models --workdir=/tmp/compare \
      [--models=hgr,vsepp,hanet,hcmi] [--ablations]

Trains each model with configs/synthetic.py (defaults unchanged), tests its
best checkpoint, prints the retrieval and binary selection tables and writes
WORKDIR/compare_models.json with the metrics and the wall time of each run.
`--ablations` adds HCMI without ALD, without L_mse and with the
video-sentence level alone.
"""

import json
import os
import time

from absl import app
from absl import flags
import jax

from configs import synthetic
from hgr_jax import binary_selection
from hgr_jax import metrics
from hgr_jax import train

_WORKDIR = flags.DEFINE_string('workdir', None, 'Root of the runs.',
                               required=True)
_MODELS = flags.DEFINE_list('models', ['hgr', 'vsepp', 'hanet', 'hcmi'],
                            'Models to compare.')
_ABLATIONS = flags.DEFINE_bool(
    'ablations', False, 'Also train the HCMI ablations of `HCMI_ABLATIONS`.')

# Run name -> overrides of configs/synthetic.py:hcmi's `config.model`.
HCMI_ABLATIONS = {
    'hcmi_no_ald': dict(use_ald=False),
    'hcmi_no_mse': dict(mse_weight=0.0),
    'hcmi_video_sentence': dict(levels=('video_sentence',)),
}


def runs():
  """Run name -> config of every run the flags ask for."""
  configs = {name: synthetic.get_config(name) for name in _MODELS.value}
  if _ABLATIONS.value:
    for name, overrides in HCMI_ABLATIONS.items():
      configs[name] = synthetic.get_config('hcmi')
      configs[name].model.update(overrides)
  return configs


def main(argv):
  del argv
  results = {}
  for name, config in runs().items():
    start = time.time()
    test = train.train_and_evaluate(config,
                                    os.path.join(_WORKDIR.value, name))
    results[name] = dict(test, wall_seconds=time.time() - start)
  table = metrics.format_table(results)
  print(f'Synthetic test split, {jax.device_count()} {jax.devices()[0].platform}'
        f' device(s), {os.cpu_count()} cores:\n{table}')
  print('Binary selection accuracy (%):\n' +
        binary_selection.format_table(results))
  print('wall seconds: ' + ', '.join(
      f'{n} {r["wall_seconds"]:.0f}' for n, r in results.items()))
  with open(os.path.join(_WORKDIR.value, 'compare_models.json'), 'w') as f:
    json.dump(results, f, indent=2, sort_keys=True)


if __name__ == '__main__':
  app.run(main)
