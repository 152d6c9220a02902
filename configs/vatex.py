"""HGR (or HANet, VSE++) on VATEX with the HGR authors' feature release (I3D).

Hyper-parameters are those of the HGR paper (Chen et al., CVPR 2020) and its
official code (batch 64, Adam lr 1e-4, 50 epochs, margin 0.2, 20 frames,
30 words, 4 verbs, 6 nouns, width 1024). HANet (Wu et al., ACM MM 2021; its
official data/vatex/model.json) uses the same values except 30 frames, and
its official code does not clip gradients.

Reading the release layout (annotation/RET, public_split, ordered_feature) is
not implemented yet: this config currently stops with a message naming the
data it needs.
"""

import ml_collections

from configs import synthetic


def get_config(variant='hgr'):
  """variant: 'hgr', 'vsepp' or 'hanet'."""
  config = synthetic.get_config(variant)
  del config.synthetic
  config.dataset = 'vatex'
  # Root of the release: annotation/RET/, public_split/, ordered_feature/.
  config.release_dir = ml_collections.config_dict.placeholder(str)
  config.feature_names = ('i3d',)
  config.cache_train_videos = False  # 25,991 videos do not fit in memory.

  # HGR paper / official code values.
  config.hidden_size = 1024
  config.learning_rate = 1e-4
  config.batch_size = 64
  config.num_epochs = 50
  config.grad_clip_norm = 2.0
  config.log_every_steps = 200
  config.eval_batch_size = 300
  if variant == 'hanet':
    config.max_frames = 30
    config.grad_clip_norm = float('inf')
  return config
