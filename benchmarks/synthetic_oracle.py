"""No-learning oracles on the synthetic data: where the ceiling is.

  python -m benchmarks.synthetic_oracle [--config=configs/synthetic.py]
      [--split=test] [--out=synthetic_oracle.json]

The oracles are `benchmarks.oracles`. Prints retrieval and
binary selection tables and writes them as JSON.
"""

import json

from absl import app
from absl import flags
from ml_collections import config_flags

from benchmarks import oracles
from data_pipelines import synthetic
from hgr_jax import binary_selection
from hgr_jax import metrics

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/synthetic.py')
_SPLIT = flags.DEFINE_enum('split', 'test', synthetic.SPLITS, 'Split.')
_OUT = flags.DEFINE_string('out', 'synthetic_oracle.json', 'JSON output path.')


def main(argv):
  del argv
  params = synthetic.SyntheticParams(**_CONFIG.value.synthetic.to_dict())
  results = oracles.evaluate(params, _SPLIT.value)
  print(f'No-learning oracles, synthetic {_SPLIT.value} split:\n' +
        metrics.format_table(results))
  print('Binary selection accuracy (%):\n' +
        binary_selection.format_table(results))
  with open(_OUT.value, 'w') as f:
    json.dump(dict(split=_SPLIT.value, synthetic=_CONFIG.value.synthetic
                   .to_dict(), oracles=results), f, indent=2, sort_keys=True)


if __name__ == '__main__':
  app.run(main)
