r"""HCMI (or HGR, VSE++) in HCMI's setting: CLIP frame features and the CLIP
text tower of a local checkpoint, on MSR-VTT.

Extract CLIP frame features into a release layout (docs/clip.md), then:

  python -m hgr_jax.main --config=configs/msrvtt_clip.py --workdir=/tmp/hcmi \
      --config.release_dir=/data/MSRVTT_clip --config.data_dir=/data/tfds \
      --config.clip_dir=/data/clip-vit-base-patch32

HCMI keeps the paper as we read it here (`HCMI.paper_config`: InfoNCE with
a learned temperature, ALD, L_mse, self-attention aggregation): the
options measured better on features trained from scratch
(configs/base.hcmi_without_clip) were chosen on data without CLIP's
pretrained alignment, and nothing has been measured with CLIP here (no
checkpoint can be downloaded). HANet reads whole-word concepts and cannot
take the CLIP tower.
"""

from configs import release

VARIANTS = ('hcmi', 'hgr', 'vsepp')


def get_config(variant='hcmi'):
  """variant: hcmi, hgr or vsepp (a model that takes the CLIP text tower)."""
  if variant not in VARIANTS:
    raise ValueError(f'configs/msrvtt_clip.py:{variant}: the CLIP text tower '
                     f'serves {", ".join(VARIANTS)}; use configs/msrvtt.py '
                     f'for {variant}.')
  config = release.release_config(
      # CLIP ViT-B image embeddings per frame (hgr_jax.extract_features).
      variant, 'msrvtt_clip', ('clip',), feature_dim_hint=512,
      pretrained_features=True)
  config.text_encoder = 'clip'
  config.tokenizer = 'clip'
  # config.clip_dir (required): the local checkpoint folder.
  # CLIP4Clip's settings (Luo et al., 2021), the recipe HCMI builds on; the
  # HCMI paper gives no other (ours where it is silent): 12 frames, 32 BPE
  # tokens, batch 128, 5 epochs, Adam 1e-4 on the new modules and 1e-7 on
  # the CLIP tower (base config), no clipping.
  config.max_frames = 12
  config.max_words = 32
  config.batch_size = 128
  config.num_epochs = 5
  return config
