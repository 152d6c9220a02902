r"""HGR (or VSE++, HANet) on VATEX from the HGR release (I3D features, 1024-d).

Prepare the TFRecords once (checks the whole release, prints a summary per
split; training also prepares them if needed):

  python -m data_pipelines.prepare --config=configs/vatex.py \
      --config.release_dir=/data/VATEX --config.data_dir=/data/tfds

Train, validate every epoch, then test the best checkpoint:

  python -m hgr_jax.main --config=configs/vatex.py --workdir=/tmp/hgr_vatex \
      --config.release_dir=/data/VATEX --config.data_dir=/data/tfds \
      --config.word_embeddings_file=/data/glove.42B.300d.txt

Add `:vsepp`, `:hcmi` or `:hanet` to the config path for the VSE++ baseline,
HCMI (its paper config in hgr_jax/models/hcmi.py, over configs/base.py) or HANet
(Wu et al., ACM MM 2021; its official data/vatex/model.json: the HGR values
with 30 frames). If the feature
folder under ordered_feature/SA/ has another name, pass it with
--config.feature_names="('name',)".

HGR split: 25,991 train / 1,500 validation / 1,500 test videos, 10 English
captions each. The HGR paper (Chen et al., CVPR 2020) reports text->video
R@1 35.1 for HGR on VATEX; see its comparison table for the other recalls.

HCMI (Jiang et al., 2022) reports no VATEX result.
"""

from configs import release


def get_config(variant='hgr'):
  """variant: a registered model (hgr, vsepp, hanet, hcmi)."""
  config = release.release_config(
      # I3D features of the release.
      variant, 'vatex', ('i3d',), feature_dim_hint=1024)
  if variant == 'hanet':
    config.max_frames = 30
  return config
