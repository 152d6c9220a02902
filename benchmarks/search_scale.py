"""Search at 100,000 and 1,000,000 distinct generated videos.

  python -m benchmarks.search_scale --export=EXPORT --workdir=/tmp/scale \
      --videos=1000000 --phases=build,queries

EXPORT is a trained export of configs/synthetic.py. The collection is the
synthetic test split generated at --videos videos (groups of a base video
and its confusers, every video distinct), so its first 100,000 videos are
the 100,000-video collection. Phases, each in its own process:

- build: encodes the collection into WORKDIR/index_<videos> (resumable:
  run again after an interruption); generation and encoding seconds apart.
- queries: one caption of each of --queries videos drawn at random, with
  its row (the true video), into WORKDIR/queries_<videos>.json.
- prefix: WORKDIR/index_<videos> as the first --videos videos of the
  built WORKDIR/index_<--prefix_of> (its shards hard-linked: the same
  distinct videos, a smaller collection).
- ann: the first stage's FAISS IVF-PQ of the index (`search.build_ann`):
  seconds, peak memory, size.
- recall: R@1/5/10 (true video ranked within k) of two-stage search with
  the exact and the ANN first stage at each --candidates, the share of
  queries whose ANN top 10 is the exact one's (same rows, same order),
  and, with --exhaustive_queries, exhaustive search of that many queries.
- latency_ann, latency_exact: single-query latency (p50/p95) at the
  default candidates and each step's median, batch throughput, reading
  1,000 random candidates warm and with the index's pages evicted (cold),
  and the process's peak resident memory, per first stage.
"""

import json
import os
import resource
import sys
import time

from absl import app
from absl import flags
import numpy as np

from benchmarks import phases
from hgr_jax import platform

_EXPORT = flags.DEFINE_string('export', None, 'Trained synthetic export.')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/scale', 'Indexes go here.')
_VIDEOS = flags.DEFINE_integer('videos', 1_000_000, 'Collection size.')
_QUERIES = flags.DEFINE_integer('queries', 1000, 'Queries (one caption of '
                                'a random video each).')
_CHUNK = flags.DEFINE_integer('chunk_size', 1000, 'Videos per shard.')
_PHASES = flags.DEFINE_list('phases', ['build', 'queries'], 'Phases to run.')
_PREFIX_OF = flags.DEFINE_integer('prefix_of', 1_000_000, 'prefix: the '
                                  'built collection to take videos from.')
_CANDIDATES = flags.DEFINE_list('candidates', ['100', '300', '1000'],
                                'recall: two-stage candidate counts.')
_RECALL_QUERIES = flags.DEFINE_integer('recall_queries', 500, 'recall: '
                                       'queries (two-stage).')
_EXHAUSTIVE_QUERIES = flags.DEFINE_integer('exhaustive_queries', 0,
                                           'recall: exhaustive queries.')
_LATENCY_QUERIES = flags.DEFINE_integer('latency_queries', 200, 'Single '
                                        'queries timed.')
_BATCH_QUERIES = flags.DEFINE_integer('batch_queries', 512, 'Queries of '
                                      'the throughput pass.')
_NPROBE = flags.DEFINE_integer('nprobe', 0, 'ANN lists probed; 0: default.')
_REFINE = flags.DEFINE_integer('refine', 0, 'ANN refine; 0: default.')
_OUT = flags.DEFINE_string('out', 'search_scale.json', 'JSON output.')
_PHASE = flags.DEFINE_string('phase', None, 'Internal: run one phase here.')


def _peak_gb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _params(config, videos):
  from data_pipelines import synthetic  # pylint: disable=g-import-not-at-top
  values = config.synthetic.to_dict()
  values['num_test_videos'] = videos
  return synthetic.SyntheticParams(**values)


class _Videos:
  """The generated test split, rendered video by video.

  The split's events come from one sequential stream (groups of confusers);
  each video's frames and captions from its own generator, so any video is
  rendered without the ones before it (only their events are drawn).
  """

  def __init__(self, params):
    from data_pipelines import synthetic  # pylint: disable=g-import-not-at-top
    self._synthetic = synthetic
    self.params = params
    self._codes = synthetic.concept_codes(params)
    self._restart()

  def _restart(self):
    synthetic = self._synthetic
    self._events = synthetic._split_events(  # pylint: disable=protected-access
        'test', synthetic._rng(self.params, 'test'), self.params)  # pylint: disable=protected-access
    self._position = 0
    self._current = None

  def events(self, index):
    if index < self._position - 1:
      self._restart()
    while self._position <= index:
      self._current = next(self._events)
      self._position += 1
    return self._current

  def render(self, index, captions=False):
    """(frames, captions or None) of video `index`, as `generate_split`."""
    synthetic, params = self._synthetic, self.params
    events = self.events(index)
    # pylint: disable=protected-access
    rng = synthetic._rng(params, 'test', index)
    distractors = synthetic._distractors(
        events, synthetic._rng(params, 'test', index, 'distractors'), params)
    frames = synthetic._render_frames(events, distractors, self._codes, rng,
                                      params)
    if not captions:
      return frames, None
    return frames, synthetic._captions(events, rng, params)[0]


def _index_path(videos):
  return os.path.join(_WORKDIR.value, f'index_{videos}')


def _build():
  from hgr_jax import export  # pylint: disable=g-import-not-at-top
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  exported = export.load(_EXPORT.value)
  videos = _Videos(_params(exported.config, _VIDEOS.value))
  ids = [f'synthetic_test_{i:07d}' for i in range(_VIDEOS.value)]
  timing = {'generate_s': 0.0, 'generated': 0}

  def read(start, stop):
    begin = time.perf_counter()
    frames = [videos.render(i)[0] for i in range(start, stop)]
    timing['generate_s'] += time.perf_counter() - begin
    timing['generated'] += stop - start
    return frames
  source = search.VideoSource({'synthetic_test': _VIDEOS.value,
                               'seed': videos.params.seed}, ids, read)
  start = time.perf_counter()
  search.build_index(exported, source, _index_path(_VIDEOS.value),
                     _CHUNK.value, progress=True)
  seconds = time.perf_counter() - start
  path = _index_path(_VIDEOS.value)
  size = sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(path) for f in files)
  encoded = timing['generated']
  return {'videos': _VIDEOS.value, 'built_now': encoded,
          'seconds': seconds, 'generate_s': timing['generate_s'],
          'index_videos_per_s': encoded / max(
              seconds - timing['generate_s'], 1e-9),
          'index_gb': size / 2**30, 'peak_gb': _peak_gb()}


def _queries():
  from hgr_jax import export  # pylint: disable=g-import-not-at-top
  exported = export.load(_EXPORT.value, verify=False)
  videos = _Videos(_params(exported.config, _VIDEOS.value))
  rng = np.random.default_rng(0)
  rows = sorted(int(r) for r in rng.choice(_VIDEOS.value, _QUERIES.value,
                                           replace=False))
  queries = []
  for row in rows:
    captions = videos.render(row, captions=True)[1]
    queries.append({'row': row, 'caption': captions[
        int(rng.integers(len(captions)))]})
  path = os.path.join(_WORKDIR.value, f'queries_{_VIDEOS.value}.json')
  with open(path, 'w') as f:
    json.dump(queries, f)
  return {'queries': len(queries), 'path': path}


def _prefix():
  import shutil  # pylint: disable=g-import-not-at-top
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  source = _index_path(_PREFIX_OF.value)
  path = _index_path(_VIDEOS.value)
  with open(os.path.join(source, search.INDEX_FILE)) as f:
    header = json.load(f)
  chunk = header['chunk_size']
  os.makedirs(path, exist_ok=True)
  for shard in range(-(-_VIDEOS.value // chunk)):
    name = f'shard-{shard:05d}'
    if not os.path.isdir(os.path.join(path, name)):
      shutil.copytree(os.path.join(source, name),
                      os.path.join(path, name + '.partial'),
                      copy_function=os.link)
      os.rename(os.path.join(path, name + '.partial'),
                os.path.join(path, name))
  # Complete: its shards are (the built one may still be growing).
  header.update(num_videos=_VIDEOS.value, complete=True,
                source={**header['source'], 'first': _VIDEOS.value})
  with open(os.path.join(path, search.INDEX_FILE), 'w') as f:
    json.dump(header, f)
  return {'videos': _VIDEOS.value, 'of': _PREFIX_OF.value}


def _du_gb(path):
  return sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(path) for f in files) / 2**30


def _ann():
  from hgr_jax import export  # pylint: disable=g-import-not-at-top
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  exported = export.load(_EXPORT.value)
  path = _index_path(_VIDEOS.value)
  start = time.perf_counter()
  header = search.build_ann(path, exported.model.search_hooks().global_keys[0])
  return {**header, 'seconds': time.perf_counter() - start,
          'ann_gb': _du_gb(os.path.join(path, 'ann')),
          'index_gb': _du_gb(path), 'peak_gb': _peak_gb()}


def _load_queries(limit):
  with open(os.path.join(_WORKDIR.value,
                         f'queries_{_VIDEOS.value}.json')) as f:
    queries = json.load(f)
  return queries[:limit]


def _ranks(results, truth):
  return np.array([next((r for r, hit in enumerate(hits) if hit.row == t),
                        10**9) for hits, t in zip(results, truth)])


def _recalls(ranks):
  return {f'r{k}': 100 * float(np.mean(ranks < k)) for k in (1, 5, 10)}


def _recall():
  from hgr_jax import export  # pylint: disable=g-import-not-at-top
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  exported = export.load(_EXPORT.value)
  index = search.Index(_index_path(_VIDEOS.value), exported)
  queries = _load_queries(_RECALL_QUERIES.value)
  truth = np.array([q['row'] for q in queries])
  parsed = search.QueryEncoder(exported).encode([q['caption']
                                                 for q in queries])
  searchers = {stage: search.Searcher(exported, index, first_stage=stage,
                                      nprobe=_NPROBE.value,
                                      refine=_REFINE.value)
               for stage in ('exact', 'ann')}
  text = searchers['exact'].encode(parsed)
  out = {'videos': len(index), 'queries': len(queries)}
  for candidates in map(int, _CANDIDATES.value):
    found = {}
    for stage, searcher in searchers.items():
      start = time.perf_counter()
      found[stage] = searcher.search(text, 10, candidates)
      out[f'{stage}_{candidates}'] = {
          **_recalls(_ranks(found[stage], truth)),
          'seconds': time.perf_counter() - start}
      print(stage, candidates, out[f'{stage}_{candidates}'],
            file=sys.stderr, flush=True)
    out[f'ann_{candidates}']['same_top10_as_exact'] = 100 * float(np.mean(
        [[h.row for h in a] == [h.row for h in b]
         for a, b in zip(found['ann'], found['exact'])]))
  if _EXHAUSTIVE_QUERIES.value:
    part = {k: v[:_EXHAUSTIVE_QUERIES.value] for k, v in text.items()}
    start = time.perf_counter()
    results = searchers['exact'].search(part, 10, 0)
    out['exhaustive'] = {
        **_recalls(_ranks(results, truth[:_EXHAUSTIVE_QUERIES.value])),
        'queries': _EXHAUSTIVE_QUERIES.value,
        'seconds': time.perf_counter() - start}
    for candidates in map(int, _CANDIDATES.value):
      for stage, searcher in searchers.items():
        out[f'{stage}_{candidates}_on_exhaustive_queries'] = _recalls(
            _ranks(searcher.search(part, 10, candidates),
                   truth[:_EXHAUSTIVE_QUERIES.value]))
  out['peak_gb'] = _peak_gb()
  return out


def _evict(index):
  """Drops the index's files from the page cache (as a larger index)."""
  for folder in index.shard_dirs:
    for name in os.listdir(folder):
      descriptor = os.open(os.path.join(folder, name), os.O_RDONLY)
      os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
      os.close(descriptor)


def _latency(stage):
  from hgr_jax import export  # pylint: disable=g-import-not-at-top
  from hgr_jax import search  # pylint: disable=g-import-not-at-top
  exported = export.load(_EXPORT.value)
  start = time.perf_counter()
  index = search.Index(_index_path(_VIDEOS.value), exported)
  single = search.Searcher(exported, index, query_batch=1, first_stage=stage,
                           nprobe=_NPROBE.value, refine=_REFINE.value)
  load_s = time.perf_counter() - start
  queries = _load_queries(max(_LATENCY_QUERIES.value, _BATCH_QUERIES.value))
  parsed = search.QueryEncoder(exported).encode([q['caption']
                                                 for q in queries])
  candidates = search.DEFAULT_CANDIDATES
  times, parts = [], {'encode': [], 'first_stage': [], 'read': [],
                      'score': []}
  for i in range(_LATENCY_QUERIES.value + 1):  # The first one compiles.
    begin = time.perf_counter()
    text = single.encode(parsed[i:i + 1])
    encoded = time.perf_counter()
    rows, cosines = single.best_global(text, candidates)
    first = time.perf_counter()
    read = single.read_candidates(rows[0])
    read_end = time.perf_counter()
    scores = single.score_candidates(read, {k: v[0] for k, v in text.items()},
                                     cosines[0])
    np.argsort(-scores['fused'], kind='stable')[:10]
    end = time.perf_counter()
    if i:
      times.append(end - begin)
      for name, (a, b) in {'encode': (begin, encoded),
                           'first_stage': (encoded, first),
                           'read': (first, read_end),
                           'score': (read_end, end)}.items():
        parts[name].append(b - a)
  result = {'first_stage': stage, 'videos': len(index),
            'candidates': candidates, 'load_s': load_s,
            'p50_ms': 1000 * float(np.percentile(times, 50)),
            'p95_ms': 1000 * float(np.percentile(times, 95)),
            'steps_median_ms': {k: 1000 * float(np.median(v))
                                for k, v in parts.items()}}
  # Reads of 1,000 random candidates: cold (evicted), then the same warm.
  rng = np.random.default_rng(1)
  cold, warm = [], []
  for _ in range(5):
    rows = rng.choice(len(index), candidates, replace=False)
    _evict(index)
    begin = time.perf_counter()
    single.read_candidates(rows)
    cold.append(time.perf_counter() - begin)
    begin = time.perf_counter()
    single.read_candidates(rows)
    warm.append(time.perf_counter() - begin)
  result['read_1000_cold_ms'] = 1000 * float(np.median(cold))
  result['read_1000_warm_ms'] = 1000 * float(np.median(warm))
  # Whole single queries right after evicting the index's pages.
  cold_queries = []
  for i in range(5):
    _evict(index)
    begin = time.perf_counter()
    single.search(single.encode(parsed[i:i + 1]), 10, candidates)
    cold_queries.append(time.perf_counter() - begin)
  result['cold_query_median_ms'] = 1000 * float(np.median(cold_queries))
  batched = search.Searcher(exported, index, first_stage=stage,
                            nprobe=_NPROBE.value, refine=_REFINE.value)
  batched.search(batched.encode(parsed[:2]), 10, candidates)
  part = parsed[:_BATCH_QUERIES.value]
  begin = time.perf_counter()
  batched.search(batched.encode(part), 10, candidates)
  result['batch_queries_per_s'] = len(part) / (time.perf_counter() - begin)
  result['batch_queries'] = len(part)
  result['peak_gb'] = _peak_gb()
  return result


_PHASE_FUNCTIONS = {'build': _build, 'queries': _queries, 'prefix': _prefix,
                    'ann': _ann, 'recall': _recall,
                    'latency_ann': lambda: _latency('ann'),
                    'latency_exact': lambda: _latency('exact')}


def main(argv):
  del argv
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  if _PHASE.value:
    return phases.run_worker(_PHASE_FUNCTIONS, _PHASE.value)
  if not _EXPORT.value:
    raise app.UsageError('--export is required.')
  results = phases.start(_WORKDIR.value, _OUT.value)
  for phase in _PHASES.value:
    results.setdefault(str(_VIDEOS.value), {})[phase] = phases.run_phase(
        'benchmarks.search_scale', phase)
    phases.save_results(_OUT.value, results)
  print(json.dumps(results, indent=2))


if __name__ == '__main__':
  app.run(main)
