"""FAISS against ScaNN as search's first stage, on one collection.

  python -m benchmarks.ann_compare --export=EXPORT \
      --index=/tmp/scale/index_1000000 \
      --queries=/tmp/scale/queries_1000000.json --out=ann_compare.json

The index's global video vectors (L2-normalised) and the queries' global
text vectors (the export's text encoder; queries from
`benchmarks.search_scale --phases=queries`) go to each library at the same
code size per video (48 bytes at width 384):

- FAISS IVF-PQ: `nlist` lists, PQ with width/8 sub-quantizers of 8 bits
  (`first_stage.ann_settings`, what search builds).
- ScaNN: a tree of the same number of leaves, asymmetric hashing with
  4-dimensional blocks of 16 centres (4 bits each: width/8 bytes), no
  reordering (that would hold the float vectors in memory).

Per library and lists (leaves) searched: the share of the exact top
--candidates global cosines found among the best `refine` x --candidates
(re-ranked by exact cosine, as search does), the share of queries whose
true video is among them (what two-stage recall needs), single-query
latency (p50/p95) and batch throughput, build seconds, and the index's
size. ScaNN's wheel is built against TensorFlow 2.19; importing it beside
the project's TensorFlow fails, so its TensorFlow ops are kept out (its
pybind API needs none).
"""

import json
import os
import resource
import sys
import time

from absl import app
from absl import flags
import numpy as np

_EXPORT = flags.DEFINE_string('export', None, 'Trained export.')
_INDEX = flags.DEFINE_string('index', None, 'Built search index.')
_QUERIES = flags.DEFINE_string('queries', None, 'JSON [{row, caption}].')
_CANDIDATES = flags.DEFINE_integer('candidates', 1000, 'First-stage pool.')
_REFINE = flags.DEFINE_integer('refine', 2, 'ANN candidates per kept one.')
_PROBES = flags.DEFINE_list('probes', ['64', '128', '256', '512'],
                            'Lists (leaves) searched per query.')
_TIMED = flags.DEFINE_integer('timed_queries', 200, 'Single queries timed.')
_LIBRARIES = flags.DEFINE_list('libraries', ['faiss', 'scann'], 'Measured.')
_OUT = flags.DEFINE_string('out', 'ann_compare.json', 'JSON output.')


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _vectors():
  """(videos, width) unit global vectors, (queries, width) unit query
  vectors, (queries,) true rows."""
  from hgr_jax import export  # pylint: disable=g-import-not-at-top
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  exported = export.load(_EXPORT.value)
  index = search.Index(_INDEX.value, exported)
  video_key, text_key = exported.model.search_hooks().global_keys
  videos = _unit(index.column(video_key).astype(np.float32))
  with open(_QUERIES.value) as f:
    queries = json.load(f)
  searcher = search.Searcher(exported, index, first_stage='exact')
  searcher.first_stage = None  # The matrix is ours; free its copy.
  text = searcher.encode(search.QueryEncoder(exported).encode(
      [q['caption'] for q in queries]))
  return (videos, _unit(np.asarray(text[text_key], np.float32)),
          np.array([q['row'] for q in queries]))


def _exact_top(videos, queries, count, batch=64):
  rows = []
  for start in range(0, len(queries), batch):
    cosines = queries[start:start + batch] @ videos.T
    part = np.argpartition(-cosines, count, axis=1)[:, :count]
    rows.append(part)
  return rows and np.concatenate(rows)


def _refined(videos, queries, rows, count):
  """The best `count` of each query's `rows` by exact cosine."""
  cosines = np.einsum('qcd,qd->qc', videos[rows], queries)
  order = np.argsort(-cosines, axis=1, kind='stable')[:, :count]
  return np.take_along_axis(rows, order, 1)


def _rss_gb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _measure(search_fn, videos, queries, truth, exact):
  """Recall, true-video rate and latency of one (library, probes)."""
  count = _CANDIDATES.value
  start = time.perf_counter()
  rows = search_fn(queries, count * _REFINE.value)
  batch_s = time.perf_counter() - start
  kept = _refined(videos, queries, rows, count)
  times = []
  for q in queries[:_TIMED.value]:
    start = time.perf_counter()
    search_fn(q[None], count * _REFINE.value)
    times.append(time.perf_counter() - start)
  return {
      'recall_of_exact_top': float(np.mean(
          [len(set(a) & set(b)) / count for a, b in zip(kept, exact)])),
      'true_video_in_pool': float(np.mean(
          [t in set(r) for t, r in zip(truth, kept)])),
      'p50_ms': 1000 * float(np.percentile(times, 50)),
      'p95_ms': 1000 * float(np.percentile(times, 95)),
      'batch_queries_per_s': len(queries) / batch_s}


def _faiss(videos, queries, truth, exact):
  import faiss  # pylint: disable=g-import-not-at-top
  from hgr_jax.search import first_stage  # pylint: disable=g-import-not-at-top
  settings = first_stage.ann_settings(len(videos), videos.shape[1])
  rss = _rss_gb()
  start = time.perf_counter()
  index = faiss.index_factory(
      videos.shape[1], f'IVF{settings["nlist"]},PQ{settings["m"]}x8',
      faiss.METRIC_INNER_PRODUCT)
  index.do_polysemous_training = False
  sample = videos[np.sort(np.random.default_rng(0).choice(
      len(videos), settings['train_size'], replace=False))]
  index.train(sample)
  index.add(videos)
  build_s = time.perf_counter() - start
  out = {'settings': settings, 'build_s': build_s,
         'bytes': int(faiss.serialize_index(index).nbytes),
         'peak_rss_growth_gb': _rss_gb() - rss, 'probes': {}}
  ivf = faiss.extract_index_ivf(index)
  for probes in map(int, _PROBES.value):
    ivf.nprobe = probes

    def search_fn(q, k):
      return index.search(q, k)[1]
    out['probes'][probes] = _measure(search_fn, videos, queries, truth,
                                     exact)
    print('faiss', probes, out['probes'][probes], file=sys.stderr)
  return out


def _import_scann():
  """scann's pybind API, without its TensorFlow ops (built for another
  TensorFlow than the project's)."""
  saved = sys.modules.get('tensorflow')
  sys.modules['tensorflow'] = None  # `import tensorflow` raises inside.
  try:
    from scann.scann_ops.py import scann_ops_pybind  # pylint: disable=g-import-not-at-top
  finally:
    if saved is None:
      del sys.modules['tensorflow']
    else:
      sys.modules['tensorflow'] = saved
  return scann_ops_pybind


def _scann(videos, queries, truth, exact):
  from hgr_jax.search import first_stage  # pylint: disable=g-import-not-at-top
  scann_ops_pybind = _import_scann()
  settings = first_stage.ann_settings(len(videos), videos.shape[1])
  rss = _rss_gb()
  start = time.perf_counter()
  count = _CANDIDATES.value * _REFINE.value
  searcher = scann_ops_pybind.builder(videos, count, 'dot_product').tree(
      num_leaves=settings['nlist'], num_leaves_to_search=64,
      training_sample_size=settings['train_size']).score_ah(
          4, anisotropic_quantization_threshold=0.2).build()
  build_s = time.perf_counter() - start
  folder = '/tmp/ann_compare_scann'
  os.makedirs(folder, exist_ok=True)
  searcher.serialize(folder)
  size = sum(os.path.getsize(os.path.join(folder, f))
             for f in os.listdir(folder))
  out = {'build_s': build_s, 'bytes': size,
         'peak_rss_growth_gb': _rss_gb() - rss, 'probes': {}}
  for probes in map(int, _PROBES.value):

    def search_fn(q, k, probes=probes):
      return searcher.search_batched(q, k, leaves_to_search=probes)[0].astype(
          np.int64)
    out['probes'][probes] = _measure(search_fn, videos, queries, truth,
                                     exact)
    print('scann', probes, out['probes'][probes], file=sys.stderr)
  return out


def main(argv):
  del argv
  videos, queries, truth = _vectors()
  exact = _exact_top(videos, queries, _CANDIDATES.value)
  results = {'videos': len(videos), 'width': videos.shape[1],
             'queries': len(queries), 'candidates': _CANDIDATES.value,
             'refine': _REFINE.value,
             'exact_true_video_in_pool': float(np.mean(
                 [t in set(r) for t, r in zip(truth, exact)]))}
  for library in _LIBRARIES.value:
    results[library] = {'faiss': _faiss, 'scann': _scann}[library](
        videos, queries, truth, exact)
    with open(_OUT.value, 'w') as f:
      json.dump(results, f, indent=2)
  print(json.dumps(results, indent=2))


if __name__ == '__main__':
  app.run(main)
