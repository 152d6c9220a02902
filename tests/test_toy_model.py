"""A model defined in this file goes through the public entry points (train
and test, export, index, search) without an edit to any library file: a
model owns its facts (encoders, scores, loss, paper config, search hooks)."""

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import tiny_config
from hgr_jax import export
from hgr_jax import search
from hgr_jax import train
from hgr_jax.models import dual_encoder
from hgr_jax.models import layers
from hgr_jax.models import registry
from hgr_jax.models import search_hooks

NAME = 'toy_mean_pool'


class _MeanPool(nn.Module):
  width: int

  @nn.compact
  def __call__(self, x, mask):
    return {'global': nn.Dense(self.width)(layers.masked_mean(x, mask))}


class _Words(nn.Module):
  vocab_size: int
  word_dim: int
  width: int

  @nn.compact
  def __call__(self, text, train=False):
    del train
    words = nn.Embed(self.vocab_size, self.word_dim)(text['token_ids'])
    mask = jnp.arange(words.shape[1])[None] < text['length'][:, None]
    return {'global': nn.Dense(self.width)(layers.masked_mean(words, mask))}


class ToyMeanPool(dual_encoder.DualEncoder):
  """Mean-pooled frames and word embeddings, cosine, the default hinge."""
  vocab_size: int
  word_dim: int = 8
  hidden_size: int = 16
  margin: float = 0.2
  loss_weights: dict = None
  mask_same_video_negatives: bool = False

  @staticmethod
  def paper_config():
    return ml_collections.ConfigDict(dict(model=dict(
        word_dim=8, hidden_size=16, margin=0.2,
        loss_weights=dict(fused=1.0), mask_same_video_negatives=False)))

  @nn.nowrap
  def search_hooks(self):
    return search_hooks.SearchHooks(uses_role_graph=False)

  def setup(self):
    self.video_encoder = _MeanPool(self.hidden_size)
    self.text_encoder = _Words(self.vocab_size, self.word_dim,
                               self.hidden_size)

  def encode_video(self, frames, frame_mask, train=False):
    return self.video_encoder(frames, frame_mask)

  def scores(self, video, text, matmul_dtype=None):
    cosine = layers.l2_normalize(video['global']) @ layers.l2_normalize(
        text['global']).T
    return {'global': cosine, 'fused': cosine}


@pytest.fixture
def toy_registered():
  registry.register(NAME)(ToyMeanPool)
  yield
  del registry.MODELS[NAME]


def test_a_model_of_a_test_file_trains_exports_and_searches(
    toy_registered, tiny_data_dir, tmp_path):
  del toy_registered
  config = tiny_config(NAME, data_dir=tiny_data_dir)
  config.model.update(dict(word_dim=8, hidden_size=16))
  config.learning_rate = 3e-3
  workdir, out = str(tmp_path / 'run'), str(tmp_path / 'export')
  metrics = train.train_and_evaluate(config, workdir)
  assert 0 < metrics['rsum'] <= 600
  assert 0 <= metrics['binary_role_swap'] <= 100

  export.export_workdir(config, workdir, out)
  exported = export.load(out)
  assert type(exported.model).__name__ == 'ToyMeanPool'
  index_dir = str(tmp_path / 'index')
  search.build_index(exported, search.dataset_source(config, 'test'),
                     index_dir, chunk_size=8)
  index = search.Index(index_dir, exported)
  searcher = search.Searcher(exported, index)
  queries = search.QueryEncoder(exported).encode(
      ['a person throws a ball', 'a dog runs'])
  text = searcher.encode(queries)
  hits = searcher.search(text, 3)
  # No global score declared: exhaustive, ranked by the model's own fused
  # score of every video.
  videos = {k: np.concatenate([np.asarray(c[k]) for c in index.chunks()])
            for k in index.keys}
  fused = np.asarray(exported.scores(videos, text)['fused'])
  for q, query_hits in enumerate(hits):
    assert [hit.row for hit in query_hits] == list(
        np.argsort(-fused[:, q], kind='stable')[:3])
