r"""HGR (or VSE++) on TGIF from the HGR release (ResNet-152, 2048-d).

Prepare the TFRecords once (checks the whole release, prints a summary per
split; training also prepares them if needed):

  python -m data_pipelines.prepare --config=configs/tgif.py \
      --config.release_dir=/data/TGIF --config.data_dir=/data/tfds

Train, validate every epoch, then test the best checkpoint:

  python -m hgr_jax.main --config=configs/tgif.py --workdir=/tmp/hgr_tgif \
      --config.release_dir=/data/TGIF --config.data_dir=/data/tfds \
      --config.word_embeddings_file=/data/glove.42B.300d.txt

Add `:vsepp` to the config path for the VSE++ baseline, `:hcmi` for HCMI
(its paper config in hgr_jax/models/hcmi.py, over configs/base.py).

The HGR paper (Chen et al., CVPR 2020) reports TGIF results in its
comparison with the state of the art; we could not check the numbers
offline, so they are not copied here: compare with the paper's table.

HCMI (Jiang et al., 2022) reports no TGIF result.
"""

from configs import release


def get_config(variant='hgr'):
  """variant: a registered model (hgr, vsepp, hanet, hcmi)."""
  return release.release_config(
      # ResNet-152 features of the release.
      variant, 'tgif', ('resnet152.pth',), feature_dim_hint=2048)
