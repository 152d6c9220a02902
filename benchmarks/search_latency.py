"""Index build speed, query latency and two-stage recall of `hgr_jax.search`.

  python -m benchmarks.search_latency --export=EXPORT [--workdir=/tmp/search]
      [--videos=100000] [--out=search_latency.json]

EXPORT is a trained export of configs/synthetic.py (python -m hgr_jax.export).
Three phases, each in its own process so that its peak resident memory
(getrusage ru_maxrss: Python, TensorFlow, JAX, the index pages it touched)
is its own:

- recall: the synthetic test split (300 videos, every caption a query) and a
  larger collection generated the same way (--recall_videos, one caption of
  each of --recall_queries videos a query) are indexed in float32 and in
  --token_dtype; R@1/5/10 of exhaustive search of the float32 index (the
  reference) against exhaustive search of the --token_dtype index and
  two-stage search of it with each --candidates value below the collection
  size (at or above it, two-stage is exhaustive), the share of queries whose
  top 10 is exactly the reference's (same rows, same order), and the largest
  difference of the two-stage fused scores from the model's float32 ones.
- build: random videos of the synthetic config's shape (12-24 frames of
  the export's feature size) are encoded into WORKDIR/index_<n> for each n of
  --build_videos: videos/s and peak memory (the same at every n: memory
  follows the chunk, not the collection).
- query: an index of --videos videos is made of the shards of the last
  built index, hard-linked over and over under new video ids (encoding
  100,000 videos takes too long on a shared 2-core machine, and query cost
  does not depend on the values; the distinct data is the built index's, so
  it stays in the page cache), then, with the synthetic test captions as
  queries:
  single-query latency (p50/p95; parsing excluded, reported apart), the
  time to read the default number of candidates with the index's pages
  evicted from the page cache (cold, as an index larger than memory), the
  median time of each step of a two-stage query (encode the query, first
  stage, read the candidates' records, score them), and throughput for
  --queries queries, two-stage at the default candidates and exhaustive.
"""

import json
import os
import resource
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from benchmarks import phases
from hgr_jax import platform

_EXPORT = flags.DEFINE_string('export', None, 'Trained synthetic export.')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/search',
                               'Where indexes are written and reused.')
_VIDEOS = flags.DEFINE_integer('videos', 100_000, 'Queried index size.')
_BUILD_VIDEOS = flags.DEFINE_list(
    'build_videos', ['5000', '10000'], 'Sizes of the indexes built (timed); '
    'the last one, repeated, makes the queried index.')
_TOKEN_DTYPE = flags.DEFINE_string(
    'token_dtype', 'int8', 'Index storage of the frame vectors (search.'
    'TOKEN_DTYPES); recall is measured against a float32 index.')
_CHUNK = flags.DEFINE_integer('chunk_size', 1000, 'Videos per shard.')
_QUERIES = flags.DEFINE_integer('queries', 1000, 'Throughput queries.')
_LATENCY_QUERIES = flags.DEFINE_integer('latency_queries', 100,
                                        'Single queries timed (two-stage).')
_LATENCY_CANDIDATES = flags.DEFINE_list(
    'latency_candidates', ['200', '1000'], 'Two-stage candidate counts of '
    'the single-query timings (the throughput pass uses the default).')
_EXHAUSTIVE_QUERIES = flags.DEFINE_integer(
    'exhaustive_queries', 3, 'Single queries timed (exhaustive); 0 skips '
    'exhaustive search.')
_EXHAUSTIVE_BATCH = flags.DEFINE_integer(
    'exhaustive_batch', 50, 'Queries of the exhaustive throughput pass.')
_CANDIDATES = flags.DEFINE_list('candidates',
                                ['10', '20', '50', '100', '200', '500',
                                 '1000'], 'Two-stage candidate counts.')
_RECALL_VIDEOS = flags.DEFINE_integer('recall_videos', 5000,
                                      'Generated collection size.')
_RECALL_QUERIES = flags.DEFINE_integer('recall_queries', 1000,
                                       'Queries on the generated collection.')
_PHASES = flags.DEFINE_list('phases', ['recall', 'build', 'query'],
                            'Phases to run.')
_OUT = flags.DEFINE_string('out', 'search_latency.json', 'JSON output.')
_PHASE = flags.DEFINE_string('phase', None, 'Internal: run one phase here.')
_ARG = flags.DEFINE_integer('arg', 0, 'Internal: the phase argument.')


def _peak_gb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _random_source(num_videos, feature_dim, seed=0):
  """Random videos of 12-24 frames, generated per read (never all held)."""
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  ids = [f'random_{i:07d}' for i in range(num_videos)]

  def read(start, stop):
    rng = np.random.default_rng((seed, start))
    return [rng.standard_normal((rng.integers(12, 25), feature_dim),
                                np.float32) for _ in range(start, stop)]
  return search.VideoSource({'random': num_videos, 'seed': seed}, ids, read)


def _index_path(videos):
  return os.path.join(_WORKDIR.value, f'index_{videos}_{_TOKEN_DTYPE.value}')


def _build(videos):
  from hgr_jax import export  # pylint: disable=g-import-not-at-top
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  exported = export.load(_EXPORT.value)
  source = _random_source(videos, exported.manifest['feature_dim'])
  path = _index_path(videos)
  start = time.perf_counter()
  search.build_index(exported, source, path, _CHUNK.value, progress=False,
                     token_dtype=_TOKEN_DTYPE.value)
  seconds = time.perf_counter() - start
  size = sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(path) for f in files)
  return {'videos': videos, 'seconds': seconds,
          'videos_per_s': videos / seconds, 'index_gb': size / 2**30,
          'peak_gb': _peak_gb()}


def _replicate(source_path, path, videos):
  """An index of `videos` videos made of copies of `source_path`'s shards."""
  import shutil  # pylint: disable=g-import-not-at-top
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  with open(os.path.join(source_path, search.INDEX_FILE)) as f:
    header = json.load(f)
  chunk = header['chunk_size']
  if header['num_videos'] % chunk or videos % chunk:
    raise ValueError('Replicated indexes need whole shards.')
  source_shards = header['num_videos'] // chunk
  os.makedirs(path, exist_ok=True)
  for shard in range(videos // chunk):
    target = os.path.join(path, f'shard-{shard:05d}')
    if os.path.isdir(target):
      continue
    # Hard links: the copies cost no disk and no time to make.
    shutil.copytree(os.path.join(source_path,
                                 f'shard-{shard % source_shards:05d}'),
                    target + '.partial', copy_function=os.link)
    ids_path = os.path.join(target + '.partial', search.IDS_FILE)
    os.remove(ids_path)  # A link to the built shard's ids: not rewritten.
    with open(ids_path, 'w') as f:
      json.dump([f'copy_{shard * chunk + i:07d}' for i in range(chunk)], f)
    os.rename(target + '.partial', target)
  header.update(num_videos=videos, complete=True,
                source={'copies_of': source_path, 'videos': videos})
  with open(os.path.join(path, search.INDEX_FILE), 'w') as f:
    json.dump(header, f)


def _synthetic_params(config, num_test_videos=None):
  from data_pipelines import synthetic  # pylint: disable=g-import-not-at-top
  params = config.synthetic.to_dict()
  if num_test_videos:
    params['num_test_videos'] = num_test_videos
  return synthetic.SyntheticParams(**params)


def _test_captions(config, limit=None):
  from data_pipelines import synthetic  # pylint: disable=g-import-not-at-top
  captions = [c for v in synthetic.generate_split(
      'test', _synthetic_params(config)) for c in v['captions']]
  return captions[:limit]


def _percentiles(seconds):
  return {'p50_ms': 1000 * float(np.percentile(seconds, 50)),
          'p95_ms': 1000 * float(np.percentile(seconds, 95))}


def _query(videos):
  from hgr_jax import export  # pylint: disable=g-import-not-at-top
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  exported = export.load(_EXPORT.value)
  _replicate(_index_path(int(_BUILD_VIDEOS.value[-1])), _index_path(videos),
             videos)
  index = search.Index(_index_path(videos), exported)
  texts = _test_captions(exported.config)
  texts = (texts * (1 + _QUERIES.value // len(texts)))[:_QUERIES.value]
  encoder = search.QueryEncoder(exported)
  start = time.perf_counter()
  queries = encoder.encode(texts)
  parse_s = (time.perf_counter() - start) / len(texts)
  start = time.perf_counter()
  # The copies' global vectors repeat: an ANN of them would say nothing
  # (benchmarks/search_scale.py measures it on distinct videos).
  single = search.Searcher(exported, index, query_batch=1,
                           first_stage='exact')
  load_s = time.perf_counter() - start
  result = {'videos': videos, 'parse_ms_per_query': 1000 * parse_s,
            'first_stage_load_s': load_s}

  def time_single(candidates, count):
    times = []
    for i in range(count + 1):  # The first call compiles.
      start = time.perf_counter()
      single.search(single.encode(queries[i:i + 1]), 10, candidates)
      times.append(time.perf_counter() - start)
    return times[1:]

  result['two_stage'] = {'candidates': search.DEFAULT_CANDIDATES}
  for candidates in map(int, _LATENCY_CANDIDATES.value):
    result[f'two_stage_{candidates}'] = {
        **_percentiles(time_single(candidates, _LATENCY_QUERIES.value)),
        'parts_ms': _two_stage_parts(
            single, queries[:_LATENCY_QUERIES.value], candidates)}
  result['cold_read'] = {
      'candidates': search.DEFAULT_CANDIDATES,
      'ms': _cold_read_ms(single, search.DEFAULT_CANDIDATES)}
  batched = search.Searcher(exported, index, first_stage='exact')
  batched.search(batched.encode(queries[:2]), 10)
  start = time.perf_counter()
  batched.search(batched.encode(queries), 10)
  result['two_stage']['queries_per_s'] = len(queries) / (
      time.perf_counter() - start)
  result['two_stage']['peak_gb'] = _peak_gb()
  result['peak_gb'] = _peak_gb()
  if not _EXHAUSTIVE_QUERIES.value:
    return result
  result['exhaustive'] = _percentiles(time_single(
      0, _EXHAUSTIVE_QUERIES.value))
  part = queries[:_EXHAUSTIVE_BATCH.value]
  batched.search(batched.encode(part[:2]), 10, 0)
  start = time.perf_counter()
  batched.search(batched.encode(part), 10, 0)
  result['exhaustive']['queries_per_s'] = len(part) / (
      time.perf_counter() - start)
  result['exhaustive']['throughput_queries'] = len(part)
  result['peak_gb'] = _peak_gb()
  return result


def _cold_read_ms(searcher, candidates, trials=5):
  """Median ms to read `candidates` random records with the index's pages
  evicted from the page cache first (posix_fadvise DONTNEED on its own
  files), as when the index is larger than memory."""
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  index = searcher.index
  rng = np.random.default_rng(0)
  seconds = []
  for _ in range(trials):
    for shard_dir in index.shard_dirs:
      descriptor = os.open(os.path.join(shard_dir, search.RECORDS_FILE),
                           os.O_RDONLY)
      os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
      os.close(descriptor)
    rows = rng.choice(len(index), candidates, replace=False)
    start = time.perf_counter()
    searcher.read_candidates(rows)
    seconds.append(time.perf_counter() - start)
  return 1000 * float(np.median(seconds))


def _two_stage_parts(searcher, queries, candidates):
  """Median ms of each step of a single two-stage query (run apart)."""
  parts = {'encode': [], 'first_stage': [], 'read': [], 'score': []}
  for query in queries:
    start = time.perf_counter()
    text = searcher.encode([query])
    parts['encode'].append(time.perf_counter() - start)
    start = time.perf_counter()
    rows, cosines = searcher.best_global(text, candidates)
    parts['first_stage'].append(time.perf_counter() - start)
    start = time.perf_counter()
    read = searcher.read_candidates(rows[0])
    parts['read'].append(time.perf_counter() - start)
    start = time.perf_counter()
    searcher.score_candidates(read, {k: v[0] for k, v in text.items()},
                              cosines[0])
    parts['score'].append(time.perf_counter() - start)
  return {name: 1000 * float(np.median(seconds))
          for name, seconds in parts.items()}


def _recall_on(exported, videos, queries_of, path):
  """Recall of exhaustive and two-stage search on one generated collection.

  The reference is exhaustive search of a float32 index; with
  --token_dtype=int8, an int8 index is searched both ways too, and the
  largest difference of its two-stage fused scores from float32 ones is
  reported.

  Args:
    exported: the export.
    videos: list of generated video dicts.
    queries_of: list of (caption, true video row).
    path: index folder (a suffix names the token dtype).
  """
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  source = search.VideoSource(
      {'generated': len(videos)}, [v['video_id'] for v in videos],
      lambda a, b: [v['frames'] for v in videos[a:b]])
  searchers = {}
  for dtype in dict.fromkeys(['float32', _TOKEN_DTYPE.value]):
    search.build_index(exported, source, f'{path}_{dtype}', _CHUNK.value,
                       progress=False, token_dtype=dtype)
    searchers[dtype] = search.Searcher(
        exported, search.Index(f'{path}_{dtype}', exported))
  reference = searchers['float32']
  queries = search.QueryEncoder(exported).encode([c for c, _ in queries_of])
  text = reference.encode(queries)
  truth = np.array([row for _, row in queries_of])

  def recalls(results):
    ranks = np.array([next((r for r, hit in enumerate(hits)
                            if hit.row == t), 10**9)
                      for hits, t in zip(results, truth)])
    return {f'r{k}': 100 * float(np.mean(ranks < k)) for k in (1, 5, 10)}

  def same_top10(results):
    return 100 * float(np.mean([[h.row for h in a] == [h.row for h in b]
                                for a, b in zip(results, exhaustive)]))

  logging.info('%d videos: exhaustive.', len(videos))
  start = time.perf_counter()
  exhaustive = reference.search(text, 10, 0)
  out = {'videos': len(videos), 'queries': len(queries),
         'exhaustive': {**recalls(exhaustive),
                        'seconds': time.perf_counter() - start}}
  searcher = searchers[_TOKEN_DTYPE.value]
  if searcher is not reference:
    results = searcher.search(text, 10, 0)
    out[f'exhaustive_{_TOKEN_DTYPE.value}'] = {
        **recalls(results), 'same_top10': same_top10(results)}
  results = exhaustive
  for candidates in map(int, _CANDIDATES.value):
    if candidates >= len(videos):
      continue  # The whole collection: exhaustive search by construction.
    logging.info('%d videos: two-stage with %d candidates.', len(videos),
                 candidates)
    start = time.perf_counter()
    results = searcher.search(text, 10, candidates)
    out[f'two_stage_{candidates}'] = {
        **recalls(results), 'same_top10': same_top10(results),
        'seconds': time.perf_counter() - start}
  # The last two-stage top 10s scored by the model from the float32 index.
  errors = [np.abs(np.asarray(reference.exported.scores(
      reference.index.gather([h.row for h in hits]),
      {k: v[q:q + 1] for k, v in text.items()})['fused'][:, 0]) -
                   [h.scores['fused'] for h in hits])
            for q, hits in enumerate(results)]
  out['max_fused_error'] = float(np.max(errors))
  return out


def _recall(_):
  from data_pipelines import synthetic  # pylint: disable=g-import-not-at-top
  from hgr_jax import export  # pylint: disable=g-import-not-at-top
  exported = export.load(_EXPORT.value)
  config = exported.config
  results = {}
  test = list(synthetic.generate_split('test', _synthetic_params(config)))
  results['synthetic_test'] = _recall_on(
      exported, test, [(c, row) for row, v in enumerate(test)
                       for c in v['captions']],
      os.path.join(_WORKDIR.value, 'index_synthetic_test'))
  large = list(synthetic.generate_split('test', _synthetic_params(
      config, _RECALL_VIDEOS.value)))
  rows = np.random.default_rng(0).choice(len(large), _RECALL_QUERIES.value,
                                         replace=False)
  results['generated'] = _recall_on(
      exported, large, [(large[row]['captions'][0], int(row))
                        for row in rows],
      os.path.join(_WORKDIR.value, f'index_generated_{len(large)}'))
  results['peak_gb'] = _peak_gb()
  return results


_PHASE_FUNCTIONS = {'build': _build, 'query': _query, 'recall': _recall}


def _run_phase(phase, arg):
  """Runs a phase in a fresh process; returns its JSON result."""
  return phases.run_phase('benchmarks.search_latency', phase, f'--arg={arg}')


def _table(results):
  lines = ['| collection | search | R@1 | R@5 | R@10 | same top 10 |',
           '|---|---|---|---|---|---|']
  for name, result in results.get('recall', {}).items():
    if name == 'peak_gb':
      continue
    for variant, r in result.items():
      if isinstance(r, dict):
        lines.append(f'| {name} ({result["videos"]} videos, '
                     f'{result["queries"]} queries) | {variant} | '
                     f'{r["r1"]:.1f} | {r["r5"]:.1f} | {r["r10"]:.1f} | '
                     f'{r.get("same_top10", 100.0):.1f} |')
  for name, result in results.get('recall', {}).items():
    if isinstance(result, dict) and 'max_fused_error' in result:
      lines.append(f'{name}: two-stage fused scores within '
                   f'{result["max_fused_error"]:.2g} of float32 ones')
  query = results.get('query')
  if query:
    lines += ['', '| search | p50 ms | p95 ms | queries/s | peak GB |',
              '|---|---|---|---|---|']
    steps = {variant: r for variant, r in query.items()
             if variant.startswith('two_stage_')}
    for variant, r in steps.items():
      lines.append(f'| {variant} | {r["p50_ms"]:.1f} | {r["p95_ms"]:.1f} '
                   '| | |')
    for variant in ('two_stage', 'exhaustive'):
      if variant not in query:
        continue
      r = query[variant]
      name = (f'two_stage ({r["candidates"]} candidates), throughput'
              if variant == 'two_stage' else variant)
      latency = (f'{r["p50_ms"]:.1f} | {r["p95_ms"]:.1f}' if 'p50_ms' in r
                 else ' | ')
      lines.append(f'| {name} | {latency} | {r["queries_per_s"]:.2f} | '
                   f'{r.get("peak_gb", query["peak_gb"]):.2f} |')
    for variant, r in steps.items():
      lines.append(f'{variant} query steps (median ms): ' + ', '.join(
          f'{name} {ms:.1f}' for name, ms in r['parts_ms'].items()))
    if 'cold_read' in query:
      lines.append(f'read {query["cold_read"]["candidates"]} candidates, '
                   f'page cache evicted: {query["cold_read"]["ms"]:.1f} ms')
  for build in results.get('build', []):
    lines.append(f'build {build["videos"]} videos: '
                 f'{build["videos_per_s"]:.0f} videos/s, '
                 f'{build["index_gb"]:.2f} GB on disk, peak '
                 f'{build["peak_gb"]:.2f} GB')
  return '\n'.join(lines)


def main(argv):
  del argv
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  if _PHASE.value:
    return phases.run_worker(_PHASE_FUNCTIONS, _PHASE.value, _ARG.value)
  if not _EXPORT.value:
    raise app.UsageError('--export is required.')
  results = phases.start(_WORKDIR.value, _OUT.value)
  for phase in _PHASES.value:
    if phase == 'build':
      results['build'] = [_run_phase('build', int(n))
                          for n in _BUILD_VIDEOS.value]
    elif phase == 'query':
      results['query'] = _run_phase('query', _VIDEOS.value)
    else:
      results[phase] = _run_phase(phase, 0)
    phases.save_results(_OUT.value, results)
  print(_table(results))


if __name__ == '__main__':
  app.run(main)
