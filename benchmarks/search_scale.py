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
"""

import json
import os
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

_EXPORT = flags.DEFINE_string('export', None, 'Trained synthetic export.')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/scale', 'Indexes go here.')
_VIDEOS = flags.DEFINE_integer('videos', 1_000_000, 'Collection size.')
_QUERIES = flags.DEFINE_integer('queries', 1000, 'Queries (one caption of '
                                'a random video each).')
_CHUNK = flags.DEFINE_integer('chunk_size', 1000, 'Videos per shard.')
_PHASES = flags.DEFINE_list('phases', ['build', 'queries'], 'Phases to run.')
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


_PHASE_FUNCTIONS = {'build': _build, 'queries': _queries}


def _run_phase(phase):
  command = [sys.executable, '-m', 'benchmarks.search_scale',
             f'--phase={phase}',
             *(a for a in sys.argv[1:] if not a.startswith('--phases'))]
  done = subprocess.run(command, stdout=subprocess.PIPE, text=True,
                        check=False)
  if done.returncode:
    raise RuntimeError(f'{phase} failed (its log is above).')
  return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  if _PHASE.value:
    print(json.dumps(_PHASE_FUNCTIONS[_PHASE.value]()))
    return
  if not _EXPORT.value:
    raise app.UsageError('--export is required.')
  os.makedirs(_WORKDIR.value, exist_ok=True)
  results = {}
  if os.path.exists(_OUT.value):
    with open(_OUT.value) as f:
      results = json.load(f)
  for phase in _PHASES.value:
    results.setdefault(str(_VIDEOS.value), {})[phase] = _run_phase(phase)
    with open(_OUT.value, 'w') as f:
      json.dump(results, f, indent=2)
  print(json.dumps(results, indent=2))


if __name__ == '__main__':
  app.run(main)
