"""Converts captions and their semantic role graphs into fixed-size arrays.

Role graphs use the format of the official HGR release (Chen et al., CVPR
2020): ``graph = [nodes, edges]``, where ``nodes`` is an ordered mapping from a
node key to ``{'role': str, 'spans': [int, ...], 'words': [str, ...]}`` (the
first node is ``'ROOT'``, spanning the whole sentence) and ``edges`` is a list
of ``[verb_key, argument_key, role]``.

The conversion reproduces the official reader bit for bit, including its
quirks (slot assignment in node order, silent truncation to the slot budget,
row-normalised adjacency), so that checkpoints and numbers stay comparable.
"""

import collections
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

ROLES = ('V', 'ARG1', 'ARG0', 'ARG2', 'ARG3', 'ARG4', 'ARGM-LOC', 'ARGM-MNR',
         'ARGM-TMP', 'ARGM-DIR', 'ARGM-ADV', 'ARGM-PRP', 'ARGM-PRD', 'ARGM-COM',
         'ARGM-MOD', 'NOUN')
NUM_ROLES = len(ROLES)

# The official release has no dedicated padding id: captions are padded with
# EOS.
BOS_ID, EOS_ID, UNK_ID = 0, 1, 2
SPECIAL_TOKENS = ('<bos>', '<eos>', '<unk>')

_ROLE_IDS = {role: i for i, role in enumerate(ROLES)}

Graph = Sequence[Any]  # [nodes: Mapping[str, dict], edges: [[str, str, str]]]


def role_id(role: str) -> int:
  """Maps a semantic role label to its index in `ROLES`.

  Continuation (``C-``) and reference (``R-``) prefixes share the id of the
  bare role; any other label (e.g. ``ARGM-GOL``) falls back to ``NOUN``.
  """
  if role.startswith(('C-', 'R-')):
    role = role[2:]
  return _ROLE_IDS.get(role, _ROLE_IDS['NOUN'])


def encode_tokens(sentence: str, word2int: Mapping[str, int],
                  max_words: int) -> Tuple[np.ndarray, int]:
  """Tokenises on whitespace and maps words to ids.

  Args:
    sentence: the caption.
    word2int: vocabulary; words missing from it become `UNK_ID`.
    max_words: fixed output length; longer captions are truncated.

  Returns:
    token_ids: int32 (max_words,), padded with `EOS_ID`.
    length: number of real (non-padding) tokens, <= max_words.
  """
  ids, _ = WordTokenizer(word2int).encode_words(sentence.split())
  return _pad(ids, max_words)


def _pad(ids: Sequence[int], max_words: int) -> Tuple[np.ndarray, int]:
  ids = ids[:max_words]
  token_ids = np.full((max_words,), EOS_ID, np.int32)
  token_ids[:len(ids)] = ids
  return token_ids, len(ids)


class WordTokenizer:
  """The release's tokenisation: one token per word, ids from word2int."""

  def __init__(self, word2int: Mapping[str, int]):
    self.vocab = word2int

  def encode_words(self, words: Sequence[str]
                   ) -> Tuple[List[int], Optional[List[List[int]]]]:
    """Word ids (UNK_ID if unknown); None: token i is word i."""
    return [self.vocab.get(word, UNK_ID) for word in words], None


def spans_to_tokens(graph: Graph,
                    positions: Sequence[Sequence[int]]) -> Graph:
  """Moves a graph's word spans onto token positions.

  Args:
    graph: role graph whose spans index words.
    positions: the token positions of each word.

  Returns:
    The graph with each node's spans replaced by the positions of its words'
    tokens (words are kept).
  """
  nodes = {key: dict(node, spans=[p for i in node['spans']
                                  for p in positions[i]])
           for key, node in graph[0].items()}
  return [nodes, graph[1]]


def _mark_spans(mask_row: np.ndarray, spans: Iterable[int]) -> None:
  # Spans may reach past the caption truncation point; those words are gone.
  for index in spans:
    if index < mask_row.shape[0]:
      mask_row[index] = True


def encode_graph(graph: Graph, max_words: int, num_verbs: int,
                 num_nouns: int) -> Dict[str, np.ndarray]:
  """Encodes a role graph into fixed-size masks, roles and adjacency.

  Graph node 0 is the sentence, nodes 1..num_verbs are verb slots and the
  following num_nouns nodes are argument ("noun") slots. Slots are filled in
  the order nodes appear in the graph; nodes whose first word lies beyond
  `max_words`, and nodes exceeding the slot budget, are dropped together
  with their edges.

  Args:
    graph: ``[nodes, edges]`` in the HGR release format.
    max_words: caption length the masks are aligned with.
    num_verbs: number of verb slots.
    num_nouns: number of argument slots.

  Returns:
    verb_masks: bool (num_verbs, max_words), words spanned by each verb.
    noun_masks: bool (num_nouns, max_words), words spanned by each argument.
    node_roles: int32 (num_verbs + num_nouns,), `role_id` per slot, 0 where
      the slot is empty.
    adjacency: float32 (N, N) with N = 1 + num_verbs + num_nouns; entry
      [dst, src] is non-zero iff there is an edge src -> dst (sentence ->
      verb, and verb <-> argument); rows are normalised to sum to 1 (empty
      rows stay 0).
  """
  nodes, edges = graph[0], graph[1]
  verb_masks = np.zeros((num_verbs, max_words), bool)
  noun_masks = np.zeros((num_nouns, max_words), bool)
  node_roles = np.zeros((num_verbs + num_nouns,), np.int32)

  verb_nodes = {}  # Node key -> index in the adjacency matrix.
  for key, node in nodes.items():
    if len(verb_nodes) >= num_verbs:
      break
    if node['role'] == 'V' and min(node['spans']) < max_words:
      slot = len(verb_nodes)
      verb_nodes[key] = 1 + slot
      _mark_spans(verb_masks[slot], node['spans'])
      node_roles[slot] = role_id('V')

  noun_nodes = {}
  for key, node in nodes.items():
    if len(noun_nodes) >= num_nouns:
      break
    if node['role'] not in ('ROOT', 'V') and min(node['spans']) < max_words:
      slot = len(noun_nodes)
      noun_nodes[key] = 1 + num_verbs + slot
      _mark_spans(noun_masks[slot], node['spans'])
      node_roles[num_verbs + slot] = role_id(node['role'])

  num_nodes = 1 + num_verbs + num_nouns
  adjacency = np.zeros((num_nodes, num_nodes), np.float32)
  for verb in verb_nodes.values():
    adjacency[verb, 0] = 1
  for edge in edges:
    verb, argument = verb_nodes.get(edge[0]), noun_nodes.get(edge[1])
    if verb is not None and argument is not None:
      adjacency[argument, verb] = 1
      adjacency[verb, argument] = 1
  row_sums = adjacency.sum(axis=1, keepdims=True)
  adjacency = np.divide(adjacency, row_sums, out=np.zeros_like(adjacency),
                        where=row_sums > 0)
  return dict(verb_masks=verb_masks, noun_masks=noun_masks,
              node_roles=node_roles, adjacency=adjacency)


def encode_caption(sentence: str, graph: Graph, tokenizer: Any,
                   max_words: int, num_verbs: int,
                   num_nouns: int) -> Dict[str, np.ndarray]:
  """Encodes a caption and its role graph.

  Args:
    sentence: the caption; split on whitespace into the graph's words.
    graph: its role graph, spans over words.
    tokenizer: a word2int dict (release tokenisation), a `WordTokenizer`,
      or any object with the `encode_words` method of
      `tokenizers.SentencePieceTokenizer`; with sub-word tokens the masks
      mark every token of a node's words.
    max_words: number of token positions (words or pieces).
    num_verbs, num_nouns: slot budgets.

  Returns:
    The `encode_graph` arrays plus token_ids int32 (max_words,) and length,
    an int32 scalar array.
  """
  if isinstance(tokenizer, Mapping):
    tokenizer = WordTokenizer(tokenizer)
  ids, positions = tokenizer.encode_words(sentence.split())
  token_ids, length = _pad(ids, max_words)
  if positions is not None:
    graph = spans_to_tokens(graph, positions)
  return dict(token_ids=token_ids, length=np.asarray(length, np.int32),
              **encode_graph(graph, max_words, num_verbs, num_nouns))


def build_word2int(sentences: Iterable[str],
                   min_count: int = 1) -> Dict[str, int]:
  """Builds a vocabulary from whitespace-tokenised sentences.

  Ids 0, 1, 2 are the special tokens; words seen at least `min_count` times
  follow from 3, most frequent first, ties broken alphabetically so that the
  mapping does not depend on sentence order.
  """
  counts = collections.Counter(
      word for sentence in sentences for word in sentence.split())
  words = sorted((w for w, c in counts.items()
                  if c >= min_count and w not in SPECIAL_TOKENS),
                 key=lambda w: (-counts[w], w))
  return {word: i for i, word in enumerate(SPECIAL_TOKENS + tuple(words))}
