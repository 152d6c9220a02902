"""GloVe initialisation of the word table."""

import jax
import numpy as np
import pytest

from hgr_jax import models
from hgr_jax import word_embeddings
from tests import conftest

WORD2INT = {'<bos>': 0, '<eos>': 1, '<unk>': 2, 'man': 3, 'new york': 4,
            'tomato': 5, 'zebra': 6}


def _write(tmp_path, text):
  path = tmp_path / 'vectors.txt'
  path.write_text(text)
  return str(path)


def test_load_glove_reads_known_words_only(tmp_path):
  path = _write(tmp_path, 'the 9 9 9\n'
                'man 1 2 3\n'
                'new york 0.5 -1 2e-1\n'  # Words may contain spaces.
                'tomato 4 5 6\n'
                'man 7 7 7\n')  # A repeated word keeps its first vector.
  table, found = word_embeddings.load_glove(path, WORD2INT)
  assert table.shape == (7, 3) and table.dtype == np.float32
  assert found.tolist() == [False] * 3 + [True, True, True, False]
  np.testing.assert_array_equal(table[3], [1, 2, 3])
  np.testing.assert_allclose(table[4], [0.5, -1, 0.2])
  np.testing.assert_array_equal(table[5], [4, 5, 6])
  assert not table[[0, 1, 2, 6]].any()


@pytest.mark.parametrize('text, message', [
    ('', 'is empty'),
    ('man\n', 'holds no vector'),
    ('man 1 2 3\ntomato 1 2\n', r'vectors.txt:2 has 2 numbers where the first '
     'line has 3'),
    ('man 1 2 3\ntomato 1 x 3\n', r'vectors.txt:2: could not convert'),
])
def test_malformed_files_name_the_line(tmp_path, text, message):
  with pytest.raises(word_embeddings.EmbeddingFileError, match=message):
    word_embeddings.load_glove(_write(tmp_path, text), WORD2INT)


def test_missing_file(tmp_path):
  with pytest.raises(word_embeddings.EmbeddingFileError,
                     match='Cannot read .*absent.txt.*word_embeddings_file'):
    word_embeddings.load_glove(str(tmp_path / 'absent.txt'), WORD2INT)


def test_dimension_must_match_config(tmp_path):
  path = _write(tmp_path, 'man 1 2 3\n')
  with pytest.raises(word_embeddings.EmbeddingFileError,
                     match='3-d vectors but config.model.word_dim is 16: '
                     'set --config.model.word_dim=3'):
    word_embeddings.glove_initializer(path, WORD2INT, 16)


def test_model_starts_from_the_vectors(tmp_path):
  config = conftest.tiny_config('hgr')
  rows = {word: np.arange(16) * 0.01 + i for i, word in
          enumerate(['man', 'tomato'])}
  path = _write(tmp_path, ''.join(
      f'{w} ' + ' '.join(map(str, v)) + '\n' for w, v in rows.items()))
  init = word_embeddings.glove_initializer(path, WORD2INT,
                                          config.model.word_dim)
  model = models.create_model(config, len(WORD2INT), embedding_init=init)
  table = np.asarray(init(jax.random.key(0), (7, 16)))
  np.testing.assert_allclose(table[3], rows['man'], rtol=1e-6)
  np.testing.assert_allclose(table[5], rows['tomato'], rtol=1e-6)
  # Other rows keep the model's random initialisation.
  assert np.all(table[6] != 0) and abs(table[6]).max() < 1
  params = model.init(jax.random.key(0),
                      conftest.zero_inputs(config, 32, 2))['params']
  embedding = [v for k, v in jax.tree_util.tree_leaves_with_path(params)
               if 'embedding' in jax.tree_util.keystr(k) and
               v.shape == (7, 16)]
  assert len(embedding) == 1
  np.testing.assert_allclose(embedding[0][3], rows['man'], rtol=1e-6)

