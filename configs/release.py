"""What the configs of the HGR/HANet feature releases share (no experiment).

The papers' settings (configs/base.py: HGR's sizes and optimisation, each
model's paper config) on a release's features, as both official codes
train: no gradient clipping, all pairs shuffled globally every epoch,
same-video captions counted as negatives. One departure, ours: the BiGRU
multiplies in bfloat16 where the hardware does so natively (below).
"""

import ml_collections

from configs import base


def release_config(model, dataset, feature_names, feature_dim_hint,
                   pretrained_features=False):
  """The paper's settings for `model` on the release of `dataset`.

  Args:
    model: a registered model name.
    dataset: name of the dataset (names its prepared TFRecords).
    feature_names: folders of ordered_feature/SA/ whose features are
      concatenated, e.g. ('resnet152.pth',).
    feature_dim_hint: the size of those features in the release. The model
      takes its input size from the prepared dataset; this only documents it
      and lets tests build the model at its real size without the data.
    pretrained_features: True for CLIP features and towers: HCMI then keeps
      the paper's reading instead of `base.hcmi_without_clip`.
  """
  if model not in base.model_names():
    raise ValueError(f'Unknown model {model!r}: add one of '
                     f'{", ".join(base.model_names())} to the config path, '
                     'e.g. configs/vatex.py:hgr.')
  config = base.model_config(model)
  config.dataset = dataset
  # Root of the release: annotation/RET/, public_split/, ordered_feature/.
  config.release_dir = ml_collections.config_dict.placeholder(str)
  config.feature_names = tuple(feature_names)
  config.feature_dim_hint = feature_dim_hint
  # A GloVe text file (the official code uses glove.42B.300d); None: random.
  config.word_embeddings_file = ml_collections.config_dict.placeholder(str)
  # Ours (the official code: float32): 'auto' gives the BiGRU's products
  # bfloat16 operands (float32 accumulation; states, parameters and Adam
  # stay float32) where the hardware multiplies bfloat16 natively (TPU,
  # GPUs from compute capability 8.0, CPUs with AVX-512 BF16 or AMX), and
  # float32 elsewhere, where bfloat16 is emulated and slower
  # (hgr_jax/platform.py; the training log says which). Recall on the
  # synthetic set stays within seed noise (docs/training_speed.md).
  # 'float32' for the official arithmetic everywhere.
  config.model.gru_matmul_dtype = 'auto'
  if model == 'hcmi' and not pretrained_features:
    # Ours, measured: on features without CLIP's alignment, the options of
    # configs/base.hcmi_without_clip (docs/hcmi.md: synthetic data and a
    # release-layout export).
    base.hcmi_without_clip(config)
  return config
