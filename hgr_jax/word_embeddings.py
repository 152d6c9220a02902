"""Word-embedding initialisation from a GloVe text file.

HGR and its VSE++ baseline start the word table from GloVe (the official code
loads glove.42B.300d vectors for the release vocabulary). Any dimension works:
it is read from the file and must equal config.model.word_dim.
"""

from typing import Mapping, Tuple

from absl import logging
import jax.numpy as jnp
import numpy as np

from hgr_jax.models import initializers


class EmbeddingFileError(ValueError):
  """The word-vector file is missing, malformed or does not fit the model."""


def load_glove(path: str, word2int: Mapping[str, int]) -> Tuple[
    np.ndarray, np.ndarray]:
  """Reads the vectors of the vocabulary's words from a GloVe text file.

  Each line is a word followed by its vector, separated by spaces. The
  vector size is that of the first line; words may contain spaces (as in
  glove.840B), so the vector is always the last `dim` fields.

  Args:
    path: the text file.
    word2int: vocabulary, word -> row.

  Returns:
    table: float32 (vocab_size, dim), zero where a word was not found.
    found: bool (vocab_size,).
  """
  vocab_size = max(word2int.values()) + 1
  table, found, dim = None, np.zeros((vocab_size,), bool), None
  try:
    f = open(path, encoding='utf-8')
  except OSError as e:
    raise EmbeddingFileError(
        f'Cannot read the word-vector file {path} ({e}): set '
        '--config.word_embeddings_file to a GloVe text file (e.g. '
        'glove.42B.300d.txt), or unset it to start from random vectors.'
    ) from e
  with f:
    for line_number, line in enumerate(f, 1):
      fields = line.rstrip('\n ').split(' ')
      if dim is None:
        dim = len(fields) - 1
        if dim < 1:
          raise EmbeddingFileError(f'{path}:1 holds no vector: expected '
                                   '"word v1 v2 ..." on each line.')
        table = np.zeros((vocab_size, dim), np.float32)
      if len(fields) <= dim:
        raise EmbeddingFileError(
            f'{path}:{line_number} has {len(fields) - 1} numbers where the '
            f'first line has {dim}: the file is corrupt or not a GloVe text '
            'file.')
      row = word2int.get(' '.join(fields[:-dim]))
      if row is None or found[row]:
        continue
      try:
        table[row] = np.asarray(fields[-dim:], np.float32)
      except ValueError as e:
        raise EmbeddingFileError(f'{path}:{line_number}: {e}; the file is '
                                 'corrupt or not a GloVe text file.') from e
      found[row] = True
  if dim is None:
    raise EmbeddingFileError(f'{path} is empty.')
  return table, found


def glove_initializer(path: str, word2int: Mapping[str, int], word_dim: int,
                      base_init=None):
  """A flax initializer: GloVe rows where found, `base_init` elsewhere.

  `base_init` defaults to the official uniform word embedding, which the
  official code overwrites with GloVe rows the same way.

  Logs how many vocabulary words the file covers.
  """
  table, found = load_glove(path, word2int)
  if table.shape[1] != word_dim:
    raise EmbeddingFileError(
        f'{path} holds {table.shape[1]}-d vectors but config.model.word_dim '
        f'is {word_dim}: set --config.model.word_dim={table.shape[1]}.')
  logging.info('Word vectors: %d of %d vocabulary words found in %s (%.1f%%).',
               found.sum(), found.size, path, 100 * found.mean())

  base_init = base_init or initializers.torch_word_embedding(word_dim)

  def init(key, shape, dtype=jnp.float32):
    if tuple(shape) != table.shape:
      raise EmbeddingFileError(
          f'The word table has shape {tuple(shape)} but the vocabulary and '
          f'{path} give {table.shape}.')
    return jnp.where(found[:, None], jnp.asarray(table, dtype),
                     base_init(key, shape, dtype))

  return init
