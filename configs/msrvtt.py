r"""HGR (or VSE++) on MSR-VTT from the HGR release (ResNet-152, 2048-d).

Prepare the TFRecords once (checks the whole release, prints a summary per
split; training also prepares them if needed):

  python -m data_pipelines.prepare --config=configs/msrvtt.py \
      --config.release_dir=/data/MSRVTT --config.data_dir=/data/tfds

Train, validate every epoch, then test the best checkpoint:

  python -m hgr_jax.main --config=configs/msrvtt.py --workdir=/tmp/hgr_msrvtt \
      --config.release_dir=/data/MSRVTT --config.data_dir=/data/tfds \
      --config.word_embeddings_file=/data/glove.42B.300d.txt

Add `:vsepp` or `:hanet` to the config path for the VSE++ baseline or HANet
(Wu et al., ACM MM 2021; its official data/msrvtt/model.json: the HGR values,
ResNet-152 features, 20 frames).

Full split: 6,513 train / 497 validation / 2,990 test videos, 20 captions
each. The HGR paper (Chen et al., CVPR 2020) reports for HGR: text->video
R@1/5/10 = 9.2 / 26.2 / 36.5, video->text 15.0 / 36.7 / 48.8, rsum 172.4.
"""

from configs import release_base


def get_config(variant='hgr'):
  """variant: a model name of configs/synthetic.py ('hgr', 'vsepp', 'hanet')."""
  return release_base.release_config(
      # ResNet-152 features of the release.
      variant, 'msrvtt', ('resnet152.pth',), feature_dim_hint=2048)
