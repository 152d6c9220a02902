"""Scores of role graphs against hand-annotated graphs, and the parser's.

  python -m benchmarks.parse_scores [out.json]

prints the caption parser's scores on the two hand-annotated sets side by
side and writes them to out.json (default parse_scores.json):

* MSVD gold (tests/data/parser_gold.jsonl, 300 captions): the set the rules
  were developed on, so its scores are optimistic;
* YouCook2 held-out (tests/data/parser_heldout_youcook2.jsonl, 200 captions):
  annotated before any rule was changed for it and never used to tune rules,
  the parser's accuracy on unseen captions.

Importing this module needs neither flags nor spaCy: `benchmarks.parse_quality`
and the tests use its functions.
"""

import collections
import json
import os
import sys

from data_pipelines import srl_import

_DATA = os.path.join(os.path.dirname(__file__), '..', 'tests', 'data')
GOLD_PATH = os.path.join(_DATA, 'parser_gold.jsonl')
HELDOUT_PATH = os.path.join(_DATA, 'parser_heldout_youcook2.jsonl')
SETS = (('MSVD gold (rules tuned on it)', GOLD_PATH),
        ('YouCook2 held-out', HELDOUT_PATH))


def gold_graph(entry):
  """The role graph of one gold-set entry (see tests/data/README.md).

  Frames go through the SRL importer as AllenNLP output would; a sentence
  without frames lists the nodes the release's augmentation gives it.
  """
  sentence = entry['sentence']
  words = sentence.split()
  if entry.get('frames'):
    srl = srl_import.bracketed_to_srl(entry['frames'])
    if srl['words'] != words:
      raise ValueError(f'The frames of {sentence!r} are over other words: '
                       f'{srl["words"]}.')
    graph = srl_import.frames_to_graph(words, srl_import.frames_from_srl(srl))
    if not srl_import.needs_augment(graph):
      return graph
  if 'augment' not in entry:
    raise ValueError(f'{sentence!r} has no frame with an argument: give its '
                     'augmentation nodes as "augment".')
  augment_words, tags = srl_import.bracketed_to_tags(entry['augment'])
  if augment_words != words:
    raise ValueError(f'The augmentation of {sentence!r} is over other words.')
  spans = srl_import.decode_tags(tags)
  graph = srl_import.root_graph(words)
  # The release's augmentation adds noun chunks first, then verbs.
  for role in ('NOUN', 'V'):
    for span_role, span in spans:
      if span_role == role:
        graph[0][str(len(graph[0]))] = dict(
            role=role, spans=list(span), words=[words[i] for i in span])
  return graph


def load_gold(path=GOLD_PATH):
  """sentence -> gold role graph, from the JSON lines gold set."""
  with open(path) as f:
    entries = [json.loads(line) for line in f if line.strip()]
  return {entry['sentence']: gold_graph(entry) for entry in entries}


def _nodes(graph):
  """Multiset of (role, spans) of the non-ROOT nodes."""
  return collections.Counter(
      (n['role'], tuple(n['spans'])) for k, n in graph[0].items()
      if k != 'ROOT')


def _edges(graph):
  nodes = graph[0]
  return collections.Counter(
      (tuple(nodes[v]['spans']), tuple(nodes[a]['spans']), role)
      for v, a, role in graph[1])


def _spans(counter):
  return collections.Counter(spans for _, spans in counter.elements())


def score(predicted_graphs, gold_graphs):
  """Micro-averaged node, span and edge precision/recall over sentences."""
  totals = {k: collections.Counter() for k in
            ('node_pred', 'node_gold', 'span_pred', 'span_gold', 'edge_pred',
             'edge_gold')}
  hits = collections.Counter()
  missed, spurious = collections.Counter(), collections.Counter()
  role_hits, role_pred, role_gold = (collections.Counter() for _ in range(3))
  exact = 0
  for sentence, gold in gold_graphs.items():
    predicted = predicted_graphs[sentence]
    p, g = _nodes(predicted), _nodes(gold)
    missed.update(role for role, _ in (g - p).elements())
    spurious.update(role for role, _ in (p - g).elements())
    role_hits.update(role for role, _ in (p & g).elements())
    role_pred.update(role for role, _ in p.elements())
    role_gold.update(role for role, _ in g.elements())
    exact += p == g and _edges(predicted) == _edges(gold)
    for name, pred, ref in (('node', p, g), ('span', _spans(p), _spans(g)),
                            ('edge', _edges(predicted), _edges(gold))):
      totals[name + '_pred'][name] += sum(pred.values())
      totals[name + '_gold'][name] += sum(ref.values())
      hits[name] += sum((pred & ref).values())
  result = {}
  for name in ('node', 'span', 'edge'):
    result[name] = _f1(dict(
        precision=hits[name] / max(1, totals[name + '_pred'][name]),
        recall=hits[name] / max(1, totals[name + '_gold'][name])))
  result['exact_graphs'] = exact / len(gold_graphs)
  result['missed_by_role'] = dict(missed.most_common())
  result['spurious_by_role'] = dict(spurious.most_common())
  result['sentences'] = len(gold_graphs)
  result['by_role'] = {
      role: _f1(dict(precision=role_hits[role] / max(1, role_pred[role]),
                     recall=role_hits[role] / max(1, role_gold[role]),
                     predicted=role_pred[role], gold=role_gold[role]))
      for role, _ in (role_gold + role_pred).most_common()}
  return result


def _f1(scores):
  total = scores['precision'] + scores['recall']
  scores['f1'] = 2 * scores['precision'] * scores['recall'] / (total or 1)
  return scores


def parser_scores(nlp=None):
  """name -> `score` of the caption parser on each set of `SETS`."""
  # Imported here: the scores themselves need no parser.
  from data_pipelines import caption_parser  # pylint: disable=g-import-not-at-top
  nlp = nlp or caption_parser.load_pipeline()
  results = {}
  for name, path in SETS:
    gold = load_gold(path)
    results[name] = score(caption_parser.parse_captions(list(gold), nlp),
                          gold)
  return results


def main(argv):
  out = argv[1] if len(argv) > 1 else 'parse_scores.json'
  results = parser_scores()
  print('| set | captions | node P | node R | node F1 | edge F1 | '
        'exact graphs |')
  print('|---|---|---|---|---|---|---|')
  for name, r in results.items():
    print(f"| {name} | {r['sentences']} | {100 * r['node']['precision']:.1f} "
          f"| {100 * r['node']['recall']:.1f} | {100 * r['node']['f1']:.1f} "
          f"| {100 * r['edge']['f1']:.1f} | {100 * r['exact_graphs']:.1f}% |")
  with open(out, 'w') as f:
    json.dump(results, f, indent=1)


if __name__ == '__main__':
  main(sys.argv)
