"""Semantic role frames -> role graphs in the HGR release format.

Follows the conversion the official HGR release used to write
``sent2rolegraph.augment.json`` from AllenNLP SRL output
(``{sentence: {'words': [...], 'verbs': [{'verb': str, 'tags': [BIO]}]}}``):

1. Each verb's BIO tags are decoded into spans. A tag ``I-X`` that does not
   continue an ``X`` span (e.g. ``B-ARG0 I-ARG1``, or ``O I-ARG1``) starts a
   new span, and a role seen twice in one frame gives two spans.
2. A frame is kept only if it has exactly one verb span and at least one
   argument.
3. Nodes are numbered '1', '2', ... in frame order, each verb followed by its
   new arguments. A (spans, role) pair that was seen before, in any frame, is
   the same node: a noun phrase that is ARG1 of two verbs is one node with
   two edges. A frame whose verb span was seen before is skipped.
4. A sentence left without nodes is augmented from a dependency parse: its
   noun chunks become NOUN nodes (or, if it has none, its NN* words), then
   its VB* words become V nodes, all without edges.

The only deviation from the official code: an ``I-`` tag on the first word
counts as ``B-`` (the official code raised and dropped the sentence).

This module does not need spaCy; step 4 takes any parsed document with
``noun_chunks`` (spans with ``start``/``end``) and tokens with ``i``,
``text`` and ``tag_`` (Penn Treebank tags), such as a spaCy ``Doc``.
"""

import re
from typing import (Any, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple)

Spans = Tuple[int, ...]
# (verb spans, [(role, argument spans), ...]); spans are sorted word indices.
Frame = Tuple[Spans, List[Tuple[str, Spans]]]
Graph = List[Any]  # [nodes: Dict[str, dict], edges: List[[str, str, str]]]


def decode_tags(tags: Sequence[str]) -> List[Tuple[str, Spans]]:
  """Splits one verb's BIO tags into (role, spans) in order of first word.

  Args:
    tags: one tag per word: 'O', 'B-<role>' or 'I-<role>'.

  Returns:
    (role, word indices) per span; 'V' spans included.
  """
  spans = []
  previous_role = None
  for index, tag in enumerate(tags):
    if tag == 'O':
      previous_role = None
      continue
    if tag[:2] not in ('B-', 'I-'):
      raise ValueError(f'Tag {tag!r} at word {index} is not O, B-* or I-*.')
    role = tag[2:]
    if tag[0] == 'B' or role != previous_role:
      spans.append((role, [index]))
    else:
      spans[-1][1].append(index)
    previous_role = role
  return [(role, tuple(indices)) for role, indices in spans]


_BRACKET = re.compile(r'\[(\S+) ([^\[\]]+)\]|(\S+)')


def bracketed_to_tags(text: str) -> Tuple[List[str], List[str]]:
  """Words and BIO tags of one frame written in bracket notation.

  "[ARG0 a man] is [V riding] [ARG1 a horse]" -> words "a man is riding a
  horse", tags B-ARG0 I-ARG0 O B-V B-ARG1 I-ARG1 (the notation of the
  CoNLL SRL papers and of AllenNLP's demo; unbracketed words are O).
  """
  words, tags = [], []
  for match in _BRACKET.finditer(text):
    role, phrase, word = match.groups()
    if word is not None:
      if '[' in word or ']' in word:
        raise ValueError(f'Unbalanced bracket at {word!r} in {text!r}.')
      words.append(word)
      tags.append('O')
      continue
    phrase_words = phrase.split()
    words.extend(phrase_words)
    tags.extend(['B-' + role] + ['I-' + role] * (len(phrase_words) - 1))
  return words, tags


def bracketed_to_srl(frames: Sequence[str]) -> Dict[str, Any]:
  """An AllenNLP SRL prediction from frames in bracket notation.

  Args:
    frames: one `bracketed_to_tags` string per verb, all over the same words.

  Returns:
    ``{'words': [...], 'verbs': [{'verb': str, 'tags': [...]}, ...]}``.
  """
  words, verbs = None, []
  for text in frames:
    frame_words, tags = bracketed_to_tags(text)
    if words is not None and frame_words != words:
      raise ValueError(f'Frame {text!r} is not over the words {words}.')
    words = frame_words
    verb = [w for w, t in zip(frame_words, tags) if t.endswith('-V')]
    verbs.append(dict(verb=' '.join(verb), tags=tags))
  return dict(words=words or [], verbs=verbs)


def frames_from_srl(srl: Mapping[str, Any]) -> List[Frame]:
  """The frames of one AllenNLP SRL prediction with one verb and arguments.

  Args:
    srl: ``{'words': [...], 'verbs': [{'verb': str, 'tags': [...]}, ...]}``.
  """
  num_words = len(srl['words'])
  frames = []
  for verb in srl['verbs']:
    if len(verb['tags']) != num_words:
      raise ValueError(
          f'Verb {verb.get("verb")!r} has {len(verb["tags"])} tags for '
          f'{num_words} words; SRL output must tag every word.')
    spans = decode_tags(verb['tags'])
    verb_spans = [s for role, s in spans if role == 'V']
    arguments = [(role, s) for role, s in spans if role != 'V']
    if len(verb_spans) == 1 and arguments:
      frames.append((verb_spans[0], arguments))
  return frames


def root_graph(words: Sequence[str]) -> Graph:
  """A graph holding only the sentence node."""
  root = dict(role='ROOT', spans=list(range(len(words))), words=list(words))
  return [{'ROOT': root}, []]


def frames_to_graph(words: Sequence[str], frames: Iterable[Frame]) -> Graph:
  """Builds the role graph of a sentence from its frames (steps 2 and 3)."""
  graph = root_graph(words)
  nodes, edges = graph
  keys = {}  # (spans, role) -> node key.

  def add(role, spans):
    key = str(len(nodes))
    nodes[key] = dict(role=role, spans=list(spans),
                      words=[words[i] for i in spans])
    keys[(spans, role)] = key
    return key

  for verb_spans, arguments in frames:
    if not arguments or (verb_spans, 'V') in keys:
      continue
    verb_key = add('V', verb_spans)
    for role, spans in arguments:
      key = keys.get((spans, role)) or add(role, spans)
      edges.append([verb_key, key, role])
  return graph


def augment(graph: Graph, doc: Any) -> Graph:
  """Adds NOUN and V nodes to a graph that has only its sentence node (step 4).

  Args:
    graph: a role graph; returned unchanged unless it has no node but ROOT.
    doc: the sentence parsed word for word (see the module docstring).
  """
  nodes = graph[0]
  if len(nodes) > 1:
    return graph
  words = nodes['ROOT']['words']
  if len(doc) != len(words):
    raise ValueError(f'The parse has {len(doc)} tokens but the sentence has '
                     f'{len(words)} words: {" ".join(words)!r}. Parse the '
                     'whitespace-split words, not the raw string.')

  def add(role, spans):
    nodes[str(len(nodes))] = dict(role=role, spans=list(spans),
                                  words=[words[i] for i in spans])

  for chunk in doc.noun_chunks:
    add('NOUN', range(chunk.start, chunk.end))
  if len(nodes) == 1:
    for token in doc:
      if token.tag_.startswith('NN'):
        add('NOUN', [token.i])
  for token in doc:
    if token.tag_.startswith('VB'):
      add('V', [token.i])
  return graph


def concatenate(graphs: Sequence[Graph]) -> Graph:
  """The graph of consecutive sentences: the union of their graphs.

  The sentence node spans all the words; every other node keeps its role
  and moves its word indices by the words before its sentence; nodes are
  renumbered in order. One graph is returned as it is.
  """
  if len(graphs) == 1:
    return graphs[0]
  words = [w for nodes, _ in graphs for w in nodes['ROOT']['words']]
  joined = root_graph(words)
  nodes, edges = joined
  offset = 0
  for graph_nodes, graph_edges in graphs:
    keys = {}
    for key, node in graph_nodes.items():
      if key == 'ROOT':
        continue
      keys[key] = str(len(nodes))
      nodes[keys[key]] = dict(node, spans=[i + offset for i in node['spans']])
    edges.extend([keys[verb], keys[argument], role]
                 for verb, argument, role in graph_edges)
    offset += len(graph_nodes['ROOT']['words'])
  return joined


def needs_augment(graph: Graph) -> bool:
  """Whether `augment` would change the graph."""
  return len(graph[0]) == 1


def srl_to_graphs(sent2srl: Mapping[str, Mapping[str, Any]],
                  parse_words=None,
                  failures: Optional[Dict[str, str]] = None
                  ) -> Dict[str, Graph]:
  """Converts AllenNLP SRL output into role graphs (steps 1 to 4).

  Args:
    sent2srl: sentence -> AllenNLP SRL prediction.
    parse_words: callable mapping a list of word lists to parsed documents
      (see `augment`), used for the sentences without frames; if None, such
      sentences keep only their ROOT node.
    failures: if given, receives sentence -> error for each prediction that
      cannot be converted (malformed tags); such a sentence is left out.
      Without it the error is raised.

  Returns:
    sentence -> graph, in the order of `sent2srl`.
  """
  graphs = {}
  for sentence, srl in sent2srl.items():
    try:
      graphs[sentence] = frames_to_graph(srl['words'], frames_from_srl(srl))
    except (ValueError, TypeError, KeyError) as error:
      if failures is None:
        raise
      failures[sentence] = f'SRL output: {type(error).__name__}: {error}'

  bare = [s for s, g in graphs.items() if needs_augment(g)]
  if parse_words is not None and bare:
    docs = parse_words([graphs[s][0]['ROOT']['words'] for s in bare])
    for sentence, doc in zip(bare, docs, strict=True):
      augment(graphs[sentence], doc)
  return graphs
