r"""HGR (or VSE++) on MSR-VTT from the HGR release (ResNet-152, 2048-d).

Prepare the TFRecords once (checks the whole release, prints a summary per
split; training also prepares them if needed):

  python -m data_pipelines.prepare --config=configs/msrvtt.py \
      --config.release_dir=/data/MSRVTT --config.data_dir=/data/tfds

Train, validate every epoch, then test the best checkpoint:

  python -m hgr_jax.main --config=configs/msrvtt.py --workdir=/tmp/hgr_msrvtt \
      --config.release_dir=/data/MSRVTT --config.data_dir=/data/tfds \
      --config.word_embeddings_file=/data/glove.42B.300d.txt

Add `:vsepp`, `:hcmi` or `:hanet` to the config path for the VSE++ baseline,
HCMI (its paper config in hgr_jax/models/hcmi.py, over configs/base.py) or HANet
(Wu et al., ACM MM 2021; its official data/msrvtt/model.json: the HGR values,
ResNet-152 features, 20 frames).

Full split: 6,513 train / 497 validation / 2,990 test videos, 20 captions
each. The HGR paper (Chen et al., CVPR 2020) reports for HGR: text->video
R@1/5/10 = 9.2 / 26.2 / 36.5, video->text 15.0 / 36.7 / 48.8, rsum 172.4.

HCMI (Jiang et al., 2022) reports text->video R@1 55.0 on MSR-VTT with CLIP
features and dual-softmax re-ranking (a frozen-CLIP-B/16 re-implementation
by others: 43.8); with the release's ResNet-152 features and a BiGRU our
HCMI cannot be compared to those numbers.
"""

from configs import release


def get_config(variant='hgr'):
  """variant: a registered model (hgr, vsepp, hanet, hcmi)."""
  return release.release_config(
      # ResNet-152 features of the release.
      variant, 'msrvtt', ('resnet152.pth',), feature_dim_hint=2048)
