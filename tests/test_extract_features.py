"""Raw videos -> CLIP frame features -> a release that trains a model."""

import json

import h5py
import numpy as np
import pytest

from data_pipelines import video_decoding
from hgr_jax import extract_features
from data_pipelines import release_layout
from data_pipelines import write_annotations
from hgr_jax import clip_checkpoint
from tests import clip_testing

av = pytest.importorskip('av')

FPS = 4  # Of the generated clips.
SECONDS = 3
COLOURS = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], np.uint8)
SPLITS = {'train': ['v0', 'v1', 'v2', 'v3', 'broken'],
          'validation': ['v4', 'v5'], 'test': ['v6', 'v7', 'absent']}
CAPTIONS = {
    'v0': ['a man is throwing a ball to a dog', 'a man plays with a dog'],
    'v1': ['a woman is riding a horse on the beach'],
    'v2': ['two people are cooking pasta in a kitchen'],
    'v3': ['a dog runs after a red ball'],
    'v4': ['a child plays with a cat on the floor'],
    'v5': ['someone is slicing a tomato with a knife'],
    'v6': ['a man is throwing a ball'],
    'v7': ['a woman is cooking pasta'],
    'broken': ['a cat sleeps'], 'absent': ['a dog sleeps'],
}


def write_clip(path, seed, width=48, height=40):
  """SECONDS seconds at FPS of one flat colour per second, then noise."""
  rng = np.random.default_rng(seed)
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('mpeg4', rate=FPS)
    stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
    for i in range(SECONDS * FPS):
      image = np.broadcast_to(COLOURS[(seed + i // FPS) % 3],
                              (height, width, 3)).copy()
      image[: height // 4] = rng.integers(0, 255, (height // 4, width, 3))
      frame = av.VideoFrame.from_ndarray(image, format='rgb24')
      container.mux(stream.encode(frame))
    container.mux(stream.encode())


@pytest.fixture(scope='module')
def release(tmp_path_factory):
  """(clip_dir, reference model, release root, video folder, summary)."""
  root = tmp_path_factory.mktemp('raw')
  clip_dir = str(root / 'clip')
  reference = clip_testing.make_checkpoint(clip_dir)
  videos = root / 'videos'
  videos.mkdir()
  for i in range(8):
    write_clip(videos / f'v{i}.mp4', seed=i)
  (videos / 'broken.mp4').write_bytes(b'\x00\x01 not a video' * 50)
  splits_file = root / 'splits.json'
  splits_file.write_text(json.dumps(SPLITS))
  out = str(root / 'release')
  summary = extract_features.extract(
      str(videos), clip_dir, release_layout.read_splits(str(splits_file)),
      out, batch_size=4, decode_threads=2)
  return clip_dir, reference, out, str(videos), summary


def test_frames_are_sampled_cropped_and_embedded(release):
  clip_dir, reference, out, videos, summary = release
  assert summary.written == 8
  assert list(summary.failed) == [f'{videos}/broken.mp4']
  assert summary.missing == ['absent']
  frames = video_decoding.decode(f'{videos}/v1.mp4', 1.0, 32)
  # One frame per second of the clip, the shorter side scaled to 32 and
  # the centre kept: the flat colour of each second, below the noise band.
  assert frames.shape == (SECONDS, 32, 32, 3)
  for second in range(SECONDS):
    np.testing.assert_allclose(frames[second, -8:].mean(axis=(0, 1)),
                               COLOURS[(1 + second) % 3], atol=12)
  # Two frames per second: at 0, 0.5, 1, ... seconds.
  assert len(video_decoding.decode(f'{videos}/v1.mp4', 2.0, 32)) == 6
  assert len(video_decoding.decode(f'{videos}/v1.mp4', 2.0, 32, 4)) == 4

  mean, std = clip_checkpoint.image_statistics(clip_dir)
  pixels = (frames.astype(np.float32) / 255 - mean) / std
  with h5py.File(release_layout.frame_features_path(out, 'clip', 'train'),
                 'r') as features:
    assert sorted(features) == ['v0', 'v1', 'v2', 'v3']
    np.testing.assert_allclose(
        features['v1'][...], clip_testing.reference_image(reference, pixels),
        atol=1e-5)
    # Which frame of which file each row is (search shows them).
    attrs = features['v1'].attrs
    assert attrs[video_decoding.VIDEO_FILE_ATTR] == f'{videos}/v1.mp4'
    np.testing.assert_allclose(attrs[video_decoding.FRAME_TIMES_ATTR],
                               np.arange(SECONDS), atol=1e-6)
  frames, times = video_decoding.decode_with_times(f'{videos}/v1.mp4',
                                                     2.0, 32, 4)
  # Of the 6 frames at 2 fps (0, 0.5, ... 2.5 s), the evenly spaced 4.
  np.testing.assert_allclose(times, [0.0, 1.0, 1.5, 2.5], atol=1e-6)


def test_rerun_skips_written_videos(release):
  clip_dir, _, out, videos, _ = release
  summary = extract_features.extract(videos, clip_dir, SPLITS, out,
                                     batch_size=4, decode_threads=2)
  assert (summary.written, summary.already_written) == (0, 8)
  assert len(summary.failed) == 1
  assert 'broken.mp4' in summary.describe()


def test_release_trains_hcmi_on_clip_text(release, tmp_path):
  from configs import msrvtt
  from hgr_jax import train
  clip_dir, _, out, _, _ = release
  write_annotations.write(CAPTIONS, SPLITS, out)
  assert release_layout.load_names(out, 'train') == ['v0', 'v1', 'v2', 'v3']
  assert release_layout.load_names(out, 'test') == ['v6', 'v7']
  config = msrvtt.get_config('hcmi')
  config.update(dict(
      release_dir=out, data_dir=str(tmp_path / 'tfds'), feature_names=('clip',),
      text_encoder='clip', clip_dir=clip_dir, clip_learning_rate=1e-4,
      max_words=clip_testing.TEXT_POSITIONS, max_frames=4, batch_size=4,
      num_epochs=1, eval_batch_size=4, binary_selection=False))
  config.model.update(dict(hidden_size=16, num_heads=2))
  metrics = train.train_and_evaluate(config, str(tmp_path / 'workdir'))
  assert 0 < metrics['rsum'] <= 600
