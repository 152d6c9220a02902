"""HGR, VSE++ and HANet on the synthetic test split: the README's results table.

  python -m benchmarks.compare_models --workdir=/tmp/compare \
      [--models=hgr,vsepp,hanet]

Trains each model with configs/synthetic.py (defaults unchanged), tests its
best checkpoint, prints the retrieval and binary selection tables and writes
WORKDIR/compare_models.json with the metrics and the wall time of each run.
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
_MODELS = flags.DEFINE_list('models', ['hgr', 'vsepp', 'hanet'],
                            'Models to compare.')


def main(argv):
  del argv
  results = {}
  for name in _MODELS.value:
    start = time.time()
    test = train.train_and_evaluate(synthetic.get_config(name),
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
