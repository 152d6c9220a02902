"""Settings shared by the configs of the HGR/HANet releases (no experiment).

Model and optimisation follow the HGR paper (Chen et al., CVPR 2020) and its
official code (cshizhe/hgr_v2t, t2vretrieval/driver/configs): batch 64, Adam
lr 1e-4, 50 epochs, margin 0.2, 20 frames, 30 words, 4 verbs, 6 nouns, width
1024, 300-d GloVe-initialised words. The official VSE++ baseline trains with
batch 128. HANet (Wu et al., ACM MM 2021) keeps these values (its
data/<dataset>/model.json); VATEX uses 30 frames. As both official codes:
no gradient clipping, all pairs shuffled globally every epoch, and
same-video captions count as negatives. One departure, ours: the BiGRU
multiplies in bfloat16 (below). HCMI (Jiang et al., 2022) trains on
CLIP features and gives no settings for these features: it keeps the HGR
values (our choice).
"""

import ml_collections

from configs import synthetic


def release_config(variant, dataset, feature_names, feature_dim_hint):
  """The paper's settings for `variant` on the release of `dataset`.

  Args:
    variant: model name, as in `configs/synthetic.py`.
    dataset: name of the dataset (names its prepared TFRecords).
    feature_names: folders of ordered_feature/SA/ whose features are
      concatenated, e.g. ('resnet152.pth',).
    feature_dim_hint: the size of those features in the release. The model
      takes its input size from the prepared dataset; this only documents it
      and lets tests build the model at its real size without the data.
  """
  config = synthetic.get_config(variant)
  del config.synthetic
  config.dataset = dataset
  # Root of the release: annotation/RET/, public_split/, ordered_feature/.
  config.release_dir = ml_collections.config_dict.placeholder(str)
  config.feature_names = tuple(feature_names)
  config.feature_dim_hint = feature_dim_hint
  # A GloVe text file (the official code uses glove.42B.300d); None: random.
  config.word_embeddings_file = ml_collections.config_dict.placeholder(str)
  # The official reader's order; --config.pair_order=video_buffer streams
  # features that do not fit in memory (VATEX needs about 2 GB).
  config.pair_order = 'video_buffer' if variant == 'hcmi' else 'global'

  config.max_frames = 20
  config.max_words = 30
  config.num_verbs = 4
  config.num_nouns = 6
  config.model.word_dim = 300
  config.model.hidden_size = 1024
  config.model.margin = 0.2
  # Ours (the official code: float32): 'auto' gives the BiGRU's products
  # bfloat16 operands (float32 accumulation; states, parameters and Adam
  # stay float32) where the hardware multiplies bfloat16 natively (TPU,
  # GPUs from compute capability 8.0, CPUs with AVX-512 BF16 or AMX), and
  # float32 elsewhere, where bfloat16 is emulated and slower
  # (hgr_jax/platform.py; the training log says which). Recall on the
  # synthetic set stays within seed noise (docs/training_speed.md).
  # 'float32' for the official arithmetic everywhere.
  config.model.gru_matmul_dtype = 'auto'
  config.learning_rate = 1e-4
  config.batch_size = 128 if variant == 'vsepp' else 64
  config.num_epochs = 50
  # Neither official code (hgr_v2t: HGR and VSE++; Roc-Ng/HANet) clips
  # gradients; inf leaves the clip out of the optimiser.
  config.grad_clip_norm = float('inf')
  if 'mask_same_video_negatives' in config.model:
    # The official loss: same-video captions are negatives too.
    config.model.mask_same_video_negatives = False
  if variant == 'hcmi':
    # Ours, unmeasured on a release: one transformer layer over the frame
    # tokens. The synthetic config has none, a choice measured on frames
    # that are mostly noise (docs/hcmi.md), which real features are not.
    config.model.temporal_layers = 1
  config.log_every_steps = 200
  config.eval_batch_size = 300
  return config
