r"""HGR (or VSE++) on MSVD (Youtube2Text) from the HGR release (ResNet-152).

Prepare the TFRecords once (checks the whole release, prints a summary per
split; training also prepares them if needed):

  python -m data_pipelines.prepare --config=configs/msvd.py \
      --config.release_dir=/data/MSVD --config.data_dir=/data/tfds

Train, validate every epoch, then test the best checkpoint:

  python -m hgr_jax.main --config=configs/msvd.py --workdir=/tmp/hgr_msvd \
      --config.release_dir=/data/MSVD --config.data_dir=/data/tfds \
      --config.word_embeddings_file=/data/glove.42B.300d.txt

Add `:vsepp` to the config path for the VSE++ baseline, `:hcmi` for HCMI
(its paper config in hgr_jax/models/hcmi.py, over configs/base.py).

Split: 1,200 train / 100 validation / 670 test videos, about 40 captions
each. The HGR paper (Chen et al., CVPR 2020) uses the Youtube2Text test set
for its fine-grained binary selection study; we could not check its numbers
offline, so none are copied here.

HCMI (Jiang et al., 2022) reports text->video R@1 58.2 on MSVD with CLIP
features and dual-softmax re-ranking; with the release's ResNet-152
features and a BiGRU our HCMI cannot be compared to it.
"""

from configs import release


def get_config(variant='hgr'):
  """variant: a registered model (hgr, vsepp, hanet, hcmi)."""
  return release.release_config(
      # ResNet-152 features of the release.
      variant, 'msvd', ('resnet152.pth',), feature_dim_hint=2048)
