"""Caption tokenisers: release words (default), a trained SentencePiece model,
or the BPE of a CLIP checkpoint.

A tokeniser turns a caption's whitespace-split words into token ids and says
which token positions each word became, so that role graphs (whose spans are
word indices) can be moved onto token positions (`role_graph.encode_caption`).
Words and SentencePiece keep the special ids of `role_graph`: BOS=0, EOS=1
(also the padding), UNK=2. CLIP's BPE keeps the checkpoint's ids: a caption
is its start-of-text token, its pieces and its end-of-text token (padding
ids do not matter: CLIP's causal attention never lets a token see them).

The SentencePiece model is trained on the training captions when a dataset is
prepared; it, or the CLIP checkpoint's tokenizer.json, is stored with the
dataset (`TokenizerMetadata`), so that training, evaluation and any later
query encoding use the same pieces.
"""

import hashlib
import io
import json
import os
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple

import sentencepiece as spm
from tensorflow.io import gfile
import tensorflow_datasets as tfds
import tokenizers as hf_tokenizers

from data_pipelines import clip_files
from data_pipelines import role_graph

KINDS = ('word', 'sentencepiece', 'clip')
SENTENCEPIECE_FILE = 'sentencepiece.model'
# Kind -> the file stored with the dataset.
_FILES = {'sentencepiece': SENTENCEPIECE_FILE,
          'clip': 'clip_tokenizer.json'}
CLIP_SPECIAL_TOKENS = ('<|startoftext|>', '<|endoftext|>')
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


class ClipTokenizer:
  """The byte-pair encoding of a CLIP checkpoint (its tokenizer.json).

  A caption is [start-of-text, pieces..., end-of-text]; CLIP's pre-tokeniser
  splits on whitespace, so each word is encoded on its own.
  """
  unk_id = None  # Byte-level pieces cover every word.

  def __init__(self, tokenizer_json: str):
    self.tokenizer_json = tokenizer_json
    self._tokenizer = hf_tokenizers.Tokenizer.from_str(tokenizer_json)
    self.bos_id, self.eos_id = (self._tokenizer.token_to_id(token)
                                for token in CLIP_SPECIAL_TOKENS)
    if self.bos_id is None or self.eos_id is None:
      raise ValueError(f'The CLIP tokenizer lacks {CLIP_SPECIAL_TOKENS}: '
                       "give a CLIP checkpoint's tokenizer.json.")

  @property
  def vocab(self):
    """piece -> id, special tokens included."""
    return self._tokenizer.get_vocab(with_added_tokens=True)

  def encode_words(self, words: Sequence[str]
                   ) -> Tuple[List[int], List[List[int]]]:
    """Token ids with start and end of text, and the positions of each
    word's pieces."""
    ids, positions = [self.bos_id], []
    for encoding in self._tokenizer.encode_batch(list(words),
                                                 add_special_tokens=False):
      positions.append(list(range(len(ids), len(ids) + len(encoding.ids))))
      ids.extend(encoding.ids)
    return ids + [self.eos_id], positions


def load_clip_tokenizer(clip_dir: str) -> ClipTokenizer:
  """CLIP_DIR/tokenizer.json, checked against the checkpoint's vocabulary.

  Raises:
    ValueError: a missing file, or a tokenizer whose vocabulary size is not
      the text tower's.
  """
  path = clip_files.require_file(clip_dir, clip_files.TOKENIZER_FILE)
  with open(path) as f:
    tokenizer = ClipTokenizer(f.read())
  vocab_size = clip_files.text_vocab_size(clip_dir)
  if len(tokenizer.vocab) != vocab_size:
    raise clip_files.CheckpointError(
        f'{path} has {len(tokenizer.vocab)} tokens but the text tower of '
        f'{clip_files.CONFIG_FILE} has vocab_size={vocab_size}: the '
        'tokenizer belongs to another checkpoint.')
  return tokenizer


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
  """Dataset metadata plus the tokeniser's file, if it has one.

  A dict saved as ``metadata.json``, like `tfds.core.MetadataDict`; the
  SentencePiece model or CLIP tokenizer.json is written next to it
  (``_FILES``), and the dict records its kind, file name, size and SHA-256
  under 'tokenizer'. (Not a MetadataDict subclass: tfds replaces those with
  a plain lazy dict when it reads a prepared dataset, and this class must
  load the file.)
  """

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.tokenizer_file: Optional[bytes] = None

  def _set(self, kind, content: bytes, vocab) -> None:
    self.tokenizer_file = content
    self['tokenizer'] = dict(kind=kind, file=_FILES[kind],
                             vocab_size=len(vocab),
                             sha256=hashlib.sha256(content).hexdigest())
    self['word2int'] = vocab

  def set_sentencepiece(self, tokenizer: SentencePieceTokenizer) -> None:
    self._set('sentencepiece', tokenizer.model_proto, tokenizer.vocab)

  def set_clip(self, tokenizer: ClipTokenizer) -> None:
    self._set('clip', tokenizer.tokenizer_json.encode(), tokenizer.vocab)

  def save_metadata(self, data_dir):
    with gfile.GFile(os.path.join(data_dir, _METADATA_FILE), 'w') as f:
      json.dump(self, f)
    if self.tokenizer_file is not None:
      path = os.path.join(data_dir, self['tokenizer']['file'])
      with gfile.GFile(path, 'wb') as f:
        f.write(self.tokenizer_file)

  def load_metadata(self, data_dir):
    with gfile.GFile(os.path.join(data_dir, _METADATA_FILE)) as f:
      self.clear()
      self.update(json.load(f))
    self.tokenizer_file = None
    if self.get('tokenizer', {}).get('kind') in _FILES:
      path = os.path.join(data_dir, self['tokenizer']['file'])
      with gfile.GFile(path, 'rb') as f:
        content = f.read()
      if hashlib.sha256(content).hexdigest() != self['tokenizer']['sha256']:
        raise ValueError(
            f'{path} is not the tokenizer file this dataset was '
            'prepared with (checksum differs); delete the dataset folder '
            f'{data_dir} and prepare it again.')
      self.tokenizer_file = content


def for_metadata(metadata: Mapping) -> object:
  """The tokeniser a prepared dataset was encoded with."""
  content = getattr(metadata, 'tokenizer_file', None)
  kind = metadata.get('tokenizer', {}).get('kind')
  if content is not None and kind == 'sentencepiece':
    return SentencePieceTokenizer(content)
  if content is not None and kind == 'clip':
    return ClipTokenizer(content.decode())
  return role_graph.WordTokenizer(dict(metadata['word2int']))


def check_kind(kind: str) -> str:
  if kind not in KINDS:
    raise ValueError(f'config.tokenizer={kind!r}: expected one of {KINDS}.')
  return kind


def kind_of(config) -> str:
  """The tokeniser kind a config trains with: 'clip' whenever the CLIP text
  tower reads the captions (it knows no other tokens)."""
  if config.get('text_encoder', 'bigru') != 'clip':
    return check_kind(config.tokenizer)
  if config.tokenizer == 'sentencepiece':
    raise ValueError('config.text_encoder=clip reads the checkpoint\'s own '
                     'BPE tokens: leave config.tokenizer at word or clip.')
  return 'clip'

