"""Caption tokenisers: release words (default) or a trained SentencePiece model.

A tokeniser turns a caption's whitespace-split words into token ids and says
which token positions each word became, so that role graphs (whose spans are
word indices) can be moved onto token positions (`role_graph.encode_caption`).
Both kinds keep the special ids of `role_graph`: BOS=0, EOS=1 (also the
padding), UNK=2.

The SentencePiece model is trained on the training captions when a dataset is
prepared and stored with the dataset (`TokenizerMetadata`), so that training,
evaluation and any later query encoding use the same pieces.
"""

import hashlib
import io
import json
import os
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple

import sentencepiece as spm
from tensorflow.io import gfile
import tensorflow_datasets as tfds

from data_pipelines import role_graph

KINDS = ('word', 'sentencepiece')
SENTENCEPIECE_FILE = 'sentencepiece.model'
_METADATA_FILE = 'metadata.json'  # tfds's name for it.


class SentencePieceTokenizer:
  """Sub-word pieces of a SentencePiece model; words never share a piece."""

  def __init__(self, model_proto: bytes):
    self.model_proto = model_proto
    self._processor = spm.SentencePieceProcessor(model_proto=model_proto)

  @property
  def vocab(self):
    """piece -> id, special tokens under `role_graph.SPECIAL_TOKENS`."""
    return {self._processor.id_to_piece(i): i
            for i in range(self._processor.get_piece_size())}

  def encode_words(self, words: Sequence[str]
                   ) -> Tuple[List[int], List[List[int]]]:
    """Token ids of the words, and the token positions of each word.

    Each word is encoded on its own; since pieces never cross whitespace,
    this equals encoding the joined sentence.
    """
    ids, positions = [], []
    for pieces in self._processor.encode(list(words)):
      positions.append(list(range(len(ids), len(ids) + len(pieces))))
      ids.extend(pieces)
    return ids, positions


def train_sentencepiece(sentences: Iterable[str],
                        vocab_size: int) -> SentencePieceTokenizer:
  """Trains a unigram SentencePiece model on whitespace-tokenised captions.

  Args:
    sentences: the training captions.
    vocab_size: upper bound on the number of pieces; a small corpus gets
      fewer (the limit is soft).
  """
  model = io.BytesIO()
  bos, eos, unk = role_graph.SPECIAL_TOKENS
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(sentences), model_writer=model,
      vocab_size=vocab_size, hard_vocab_limit=False, model_type='unigram',
      character_coverage=1.0,
      bos_id=role_graph.BOS_ID, eos_id=role_graph.EOS_ID,
      unk_id=role_graph.UNK_ID, pad_id=-1, bos_piece=bos, eos_piece=eos,
      unk_piece=unk,
      # One thread: the same captions give the same model.
      num_threads=1, minloglevel=2)
  return SentencePieceTokenizer(model.getvalue())


class TokenizerMetadata(tfds.core.Metadata, dict):
  """Dataset metadata plus the SentencePiece model file, if there is one.

  A dict saved as ``metadata.json``, like `tfds.core.MetadataDict`; the model
  is written next to it as ``sentencepiece.model``, and the dict records its
  kind, file name, size and SHA-256 under 'tokenizer'. (Not a MetadataDict
  subclass: tfds replaces those with a plain lazy dict when it reads a
  prepared dataset, and this class must load the model file.)
  """

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.sentencepiece_model: Optional[bytes] = None

  def set_sentencepiece(self, tokenizer: SentencePieceTokenizer) -> None:
    self.sentencepiece_model = tokenizer.model_proto
    self['tokenizer'] = dict(
        kind='sentencepiece', file=SENTENCEPIECE_FILE,
        vocab_size=len(tokenizer.vocab),
        sha256=hashlib.sha256(tokenizer.model_proto).hexdigest())
    self['word2int'] = tokenizer.vocab

  def save_metadata(self, data_dir):
    with gfile.GFile(os.path.join(data_dir, _METADATA_FILE), 'w') as f:
      json.dump(self, f)
    if self.sentencepiece_model is not None:
      with gfile.GFile(os.path.join(data_dir, SENTENCEPIECE_FILE), 'wb') as f:
        f.write(self.sentencepiece_model)

  def load_metadata(self, data_dir):
    with gfile.GFile(os.path.join(data_dir, _METADATA_FILE)) as f:
      self.clear()
      self.update(json.load(f))
    self.sentencepiece_model = None
    if self.get('tokenizer', {}).get('kind') == 'sentencepiece':
      path = os.path.join(data_dir, self['tokenizer']['file'])
      with gfile.GFile(path, 'rb') as f:
        model = f.read()
      if hashlib.sha256(model).hexdigest() != self['tokenizer']['sha256']:
        raise ValueError(
            f'{path} is not the SentencePiece model this dataset was '
            'prepared with (checksum differs); delete the dataset folder '
            f'{data_dir} and prepare it again.')
      self.sentencepiece_model = model


def for_metadata(metadata: Mapping) -> object:
  """The tokeniser a prepared dataset was encoded with."""
  model = getattr(metadata, 'sentencepiece_model', None)
  if model is not None:
    return SentencePieceTokenizer(model)
  return role_graph.WordTokenizer(dict(metadata['word2int']))


def check_kind(kind: str) -> str:
  if kind not in KINDS:
    raise ValueError(f'config.tokenizer={kind!r}: expected one of {KINDS}.')
  return kind

