"""Query strings -> the caption arrays a model's text encoder reads."""

import dataclasses
import math
from typing import Dict, List, Sequence

import numpy as np

from data_pipelines import caption_parser
from data_pipelines import caption_text
from data_pipelines import input_pipeline
from data_pipelines import length_buckets
from data_pipelines import role_graph
from hgr_jax.search import index_format as fmt


@dataclasses.dataclass
class Query:
  """An encoded-ready query.

  Attributes:
    text: the query as given.
    arrays: caption arrays of `input_pipeline.CAPTION_KEYS`, no batch axis.
    phrases: token kind ('verb', 'noun': role graph nodes; 'word': token
      positions) -> text of each slot ('' if empty).
    warnings: things the user should know (unknown words, no verb).
  """
  text: str
  arrays: Dict[str, np.ndarray]
  phrases: Dict[str, List[str]]
  warnings: List[str]


def query_words(text):
  """The query's words, normalised as the release's captions."""
  return caption_text.normalise(text).split()


class QueryEncoder:
  """Turns query strings into caption arrays the export's model encodes.

  Args:
    exported: an `export.ExportedModel`.
    nlp: a loaded spaCy pipeline; loaded on first use if the model needs
      role graphs.
  """

  def __init__(self, exported, nlp=None):
    self.manifest = exported.manifest
    self.tokenizer = exported.tokenizer
    self.hooks = exported.model.search_hooks()
    self._nlp = nlp

  def _graphs(self, sentences):
    if not self.hooks.uses_role_graph:
      return [[{'ROOT': {'role': 'ROOT', 'spans': [], 'words': []}}, []]
              for _ in sentences]
    if self._nlp is None:
      try:
        self._nlp = caption_parser.load_pipeline()
      except (ImportError, OSError) as e:
        raise fmt.SearchError(str(e).split('\n')[0]) from e
    graphs = caption_parser.parse_captions(sentences, self._nlp,
                                           log_every=10**9)
    return [graphs[s] for s in sentences]

  def encode(self, texts: Sequence[str]) -> List[Query]:
    """Queries of `texts`.

    Raises:
      SearchError: a query is empty or has no known word.
    """
    words = [query_words(text) for text in texts]
    for text, query in zip(texts, words):
      if not query:
        raise fmt.SearchError(
            f'Query {text!r} is empty: give a sentence, e.g. "a man throws '
            'a ball to a dog".')
    sentences = [' '.join(w) for w in words]
    return [self._encode_one(text, sentence, graph)
            for text, sentence, graph in zip(texts, sentences,
                                             self._graphs(sentences))]

  def _encode_one(self, text, sentence, graph):
    words = sentence.split()
    ids, positions = self.tokenizer.encode_words(words)
    if positions is None:
      positions = [[i] for i in range(len(words))]
    # CLIP's byte-level BPE has no unknown token (unk_id None).
    unk_id = getattr(self.tokenizer, 'unk_id', role_graph.UNK_ID)
    unknown = [w for w, p in zip(words, positions)
               if all(ids[i] == unk_id for i in p)]
    if len(unknown) == len(words):
      raise fmt.SearchError(
          f'Query {text!r}: no word of it is in the model\'s vocabulary '
          f'(unknown: {", ".join(unknown)}).')
    warnings = []
    if unknown:
      warnings.append(f'unknown words ignored: {", ".join(unknown)}')
    manifest = self.manifest
    arrays = role_graph.encode_caption(
        sentence, graph, self.tokenizer, manifest['max_words'],
        manifest['num_verbs'], manifest['num_nouns'])
    if self.hooks.uses_role_graph and not arrays['verb_masks'].any():
      warnings.append('no verb found: matched on its noun phrases only')
    token_word = {t: w for w, p in enumerate(positions) for t in p}
    phrases = {
        kind: [' '.join(dict.fromkeys(
            words[token_word[t]] for t in np.flatnonzero(mask)))
               for mask in arrays[f'{kind}_masks']]
        for kind in ('verb', 'noun')}
    # Unknown words are left out of --explain, as the warning says.
    phrases['word'] = [
        words[token_word[t]] if t < arrays['length'] and
        words[token_word[t]] not in unknown else ''
        for t in range(manifest['max_words'])]
    return Query(text, arrays, phrases, warnings)


def stack_queries(queries):
  """Caption arrays of `queries` with a leading (queries,) axis."""
  return {k: np.stack([q.arrays[k] for q in queries])
          for k in input_pipeline.CAPTION_KEYS}


def query_lengths(max_words):
  """The caption axes queries are cut to: 8, 16, 32, ... below `max_words`,
  and `max_words`, so that the encoder compiles a few shapes only."""
  powers = [8 * 2**i for i in range(max(0, int(math.log2(max_words / 8))) + 1)
            if 8 * 2**i < max_words]
  return length_buckets.bucket_lengths(powers, max_words)


def cut_to_length(captions, max_words):
  """Caption arrays cut to the `query_lengths` bucket of their longest
  caption, so the text encoder runs only the steps a query has."""
  return length_buckets.trim_to_bucket(captions, query_lengths(max_words))
