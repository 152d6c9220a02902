"""Quality and speed of the spaCy caption parser (`caption_parser`).

  python -m benchmarks.parse_quality [--splits=train,test]
      [--msvd_dir=../shared/data/msvd_captions]
      [--official_counts=../shared/data/hgr_official_example/
                         role_type_counts.json]
      [--official_stats=../shared/data/hgr_official_example/graph_stats.json]
      [--out=parse_quality.json]

0. The gold set (tests/data/parser_gold.jsonl, 300 MSVD captions annotated
   by hand, see tests/data/README.md): node, edge and exact-graph scores as
   below, and node precision/recall per role; the same scores on the
   held-out set (--heldout, 200 YouCook2 captions the rules never saw).
1. Synthetic captions, whose role graphs are exact: node precision and recall
   with nodes compared as (role, word indices), span-only (role ignored), and
   edges compared as (verb span, argument span, role); errors by role.
2. Real captions (MSVD test and val, if --msvd_dir exists): sentences/s of
   `parse_captions` (median of --repeats runs), the sentences that got a
   fallback graph, the share of sentences with at
   least one verb node and at least one argument node, and the role
   distribution next to the official HGR histogram; with msvd_corpus_test.csv
   there, how many raw captions `caption_text.normalise` turns into release
   captions, and the share of frames for raw and normalised captions.
Writes everything to --out as JSON and prints tables.
"""

import collections
import csv
import json
import os
import statistics
import time

from absl import app
from absl import flags

from benchmarks import parse_scores
from data_pipelines import caption_parser
from data_pipelines import caption_text
from data_pipelines import synthetic

_SPLITS = flags.DEFINE_list('splits', ['train', 'test'],
                            'Synthetic splits to score.')
_MSVD_DIR = flags.DEFINE_string('msvd_dir', '../shared/data/msvd_captions',
                                'Directory of sents_*_lc_nopunc.txt.')
_OFFICIAL = flags.DEFINE_string(
    'official_counts',
    '../shared/data/hgr_official_example/role_type_counts.json',
    'Official role histogram [[role, count], ...].')
_OFFICIAL_STATS = flags.DEFINE_string(
    'official_stats', '../shared/data/hgr_official_example/graph_stats.json',
    'Official graph statistics (sentences without frames).')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed parses of MSVD.')
_BATCH = flags.DEFINE_integer('batch_size', 256, 'nlp.pipe batch size.')
_GOLD = flags.DEFINE_string('gold', parse_scores.GOLD_PATH,
                            'Hand-annotated MSVD captions (JSON lines).')
_HELDOUT = flags.DEFINE_string(
    'heldout', parse_scores.HELDOUT_PATH,
    'Hand-annotated held-out captions (JSON lines).')
_OUT = flags.DEFINE_string('out', 'parse_quality.json', 'JSON output path.')


def _without_clause_tmp(graph):
  """The graph minus ARGM-TMP nodes that span a verb node, and their edges.

  The synthetic graphs leave out the while/after clause that SRL (and the
  parser) attach to the other clause's verb as ARGM-TMP, so these nodes
  count as spurious in the plain score.
  """
  nodes, edges = graph
  verbs = {i for n in nodes.values() if n['role'] == 'V' for i in n['spans']}
  dropped = {k for k, n in nodes.items()
             if n['role'] == 'ARGM-TMP' and verbs & set(n['spans'])}
  return [{k: n for k, n in nodes.items() if k not in dropped},
          [e for e in edges if e[1] not in dropped]]


def gold_quality(nlp, gold):
  """Scores of the parser on the hand-annotated gold set."""
  predicted = caption_parser.parse_captions(list(gold), nlp,
                                            batch_size=_BATCH.value)
  return parse_scores.score(predicted, gold)


def synthetic_quality(nlp, split):
  gold = {}
  for video in synthetic.generate_split(split):
    gold.update(zip(video['captions'], video['graphs']))
  predicted = caption_parser.parse_captions(list(gold), nlp,
                                            batch_size=_BATCH.value)
  result = parse_scores.score(predicted, gold)
  result['without_clause_tmp'] = parse_scores.score(
      {s: _without_clause_tmp(g) for s, g in predicted.items()}, gold)
  return result


def _read_msvd(directory):
  sentences = []
  for name in ('sents_test_lc_nopunc.txt', 'sents_val_lc_nopunc.txt'):
    with open(os.path.join(directory, name)) as f:
      sentences.extend(line.rstrip('\n').split('\t', 1)[1] for line in f)
  return sentences


def real_quality(nlp, sentences):
  unique = list(dict.fromkeys(sentences))
  seconds = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    failures = {}
    graphs = caption_parser.parse_captions(unique, nlp,
                                           batch_size=_BATCH.value,
                                           failures=failures)
    seconds.append(time.perf_counter() - start)
  roles = collections.Counter()
  with_frame = with_verb_and_argument = 0
  verbs_per_sentence, nouns_per_sentence = [], []
  for graph in graphs.values():
    nodes = [n for k, n in graph[0].items() if k != 'ROOT']
    roles.update(n['role'] for n in nodes)
    verbs = sum(n['role'] == 'V' for n in nodes)
    verbs_per_sentence.append(verbs)
    nouns_per_sentence.append(len(nodes) - verbs)
    with_verb_and_argument += 0 < verbs < len(nodes)
    with_frame += bool(graph[1])  # An edge: a frame before augmentation.
  median = statistics.median(seconds)
  return dict(
      sentences=len(unique), median_seconds=median, seconds=seconds,
      fallback_graphs=len(failures),
      sentences_per_second=len(unique) / median,
      share_with_verb_and_argument=with_verb_and_argument / len(unique),
      share_with_frame=with_frame / len(unique),
      verbs_per_sentence=statistics.mean(verbs_per_sentence),
      nouns_per_sentence=statistics.mean(nouns_per_sentence),
      role_counts=dict(roles.most_common()))


def normalisation_quality(nlp, directory):
  """Raw MSVD test captions (msvd_corpus_test.csv) against the release's.

  Returns the share of raw captions whose normalised form is one of the
  release-style captions, and the share of distinct captions with a frame
  when parsed raw and when normalised.
  """
  with open(os.path.join(directory, 'msvd_corpus_test.csv')) as f:
    raw = [row['Description'] for row in csv.DictReader(f)
           if row['Language'] == 'English']
  with open(os.path.join(directory, 'sents_test_lc_nopunc.txt')) as f:
    release = {line.rstrip('\n').split('\t', 1)[1] for line in f}
  normalised = [caption_text.normalise(c) for c in raw]
  result = dict(raw_captions=len(raw), reproduced=sum(
      c in release for c in normalised) / len(raw))
  for name, captions in (('raw', raw), ('normalised', normalised)):
    graphs = caption_parser.parse_captions(captions, nlp,
                                           batch_size=_BATCH.value)
    result[f'share_with_frame_{name}'] = (
        sum(bool(g[1]) for g in graphs.values()) / len(graphs))
  return result


def _print_distribution(ours, official):
  official = {role: count for role, count in official if role != 'ROOT'}
  total_ours, total_official = sum(ours.values()), sum(official.values())
  roles = sorted(set(ours) | set(official),
                 key=lambda r: -official.get(r, 0) - ours.get(r, 0))
  print('\n| role | ours (MSVD) | official (HGR release) |')
  print('|---|---|---|')
  for role in roles:
    print(f'| {role} | {100 * ours.get(role, 0) / total_ours:.1f}% | '
          f'{100 * official.get(role, 0) / total_official:.1f}% |')


def main(argv):
  del argv
  nlp = caption_parser.load_pipeline()
  results = dict(model=nlp.meta['name'], model_version=nlp.meta['version'],
                 cpu_count=os.cpu_count(), synthetic={})
  print('| synthetic split | scored | captions | node P | node R | span P '
        '| span R | edge P | edge R | exact graphs |')
  print('|---|---|---|---|---|---|---|---|---|---|')
  for key, name, path in (('heldout', 'Held-out set', _HELDOUT.value),
                          ('gold', 'Gold set', _GOLD.value)):
    r = results[key] = gold_quality(nlp, parse_scores.load_gold(path))
    print(f"{name} ({r['sentences']} captions): node P/R/F1 "
          f"{100 * r['node']['precision']:.1f} / "
          f"{100 * r['node']['recall']:.1f} / {100 * r['node']['f1']:.1f}, "
          f"edge P/R/F1 {100 * r['edge']['precision']:.1f} / "
          f"{100 * r['edge']['recall']:.1f} / {100 * r['edge']['f1']:.1f}, "
          f"exact graphs {100 * r['exact_graphs']:.1f}%")
  print('\n| role | gold nodes | predicted | precision | recall | F1 |')
  print('|---|---|---|---|---|---|')
  for role, s in r['by_role'].items():
    print(f"| {role} | {s['gold']} | {s['predicted']} "
          f"| {100 * s['precision']:.1f} | {100 * s['recall']:.1f} "
          f"| {100 * s['f1']:.1f} |")
  print()
  for split in _SPLITS.value:
    results['synthetic'][split] = synthetic_quality(nlp, split)
    for name, r in (('all nodes', results['synthetic'][split]),
                    ('without clause ARGM-TMP',
                     results['synthetic'][split]['without_clause_tmp'])):
      print(f"| {split} | {name} | {r['sentences']} "
            f"| {100 * r['node']['precision']:.1f} "
            f"| {100 * r['node']['recall']:.1f} "
            f"| {100 * r['span']['precision']:.1f} "
            f"| {100 * r['span']['recall']:.1f} "
            f"| {100 * r['edge']['precision']:.1f} "
            f"| {100 * r['edge']['recall']:.1f} "
            f"| {100 * r['exact_graphs']:.1f} |")
    r = results['synthetic'][split]
    print(f"  missed {r['missed_by_role']}; spurious {r['spurious_by_role']}")
  if os.path.isdir(_MSVD_DIR.value):
    r = real_quality(nlp, _read_msvd(_MSVD_DIR.value))
    results['msvd'] = r
    print(f"\nMSVD test+val: {r['sentences']} unique sentences, "
          f"{r['sentences_per_second']:.0f} sentences/s (median of "
          f"{_REPEATS.value}, {os.cpu_count()} cores), "
          f"{r['fallback_graphs']} fallback graphs, "
          f"{100 * r['share_with_verb_and_argument']:.1f}% with a verb node "
          f"and an argument node ({100 * r['share_with_frame']:.1f}% with a "
          f"frame, i.e. an edge), {r['verbs_per_sentence']:.2f} verbs and "
          f"{r['nouns_per_sentence']:.2f} argument nodes per sentence")
    if os.path.exists(_OFFICIAL_STATS.value):
      with open(_OFFICIAL_STATS.value) as f:
        stats = json.load(f)
      share = 1 - (stats['sents_without_non_root_nodes_before_augment'] /
                   stats['num_sentences'])
      results['official_share_with_frame'] = share
      print(f'Official HGR release: {100 * share:.1f}% of '
            f"{stats['num_sentences']} sentences with a frame.")
    if os.path.exists(_OFFICIAL.value):
      with open(_OFFICIAL.value) as f:
        official = json.load(f)
      results['official_role_counts'] = dict(official)
      _print_distribution(r['role_counts'], official)
    if os.path.exists(os.path.join(_MSVD_DIR.value, 'msvd_corpus_test.csv')):
      r = results['normalisation'] = normalisation_quality(nlp,
                                                           _MSVD_DIR.value)
      print(f"\nRaw MSVD test captions ({r['raw_captions']}): "
            f"{100 * r['reproduced']:.1f}% normalise to a release caption; "
            f"{100 * r['share_with_frame_raw']:.1f}% of the distinct raw "
            f"captions get a frame, "
            f"{100 * r['share_with_frame_normalised']:.1f}% once normalised.")
  with open(_OUT.value, 'w') as f:
    json.dump(results, f, indent=1)


if __name__ == '__main__':
  app.run(main)
