"""Evaluation wall time and peak memory: the official algorithm against ours.

  python -m benchmarks.eval_throughput [--sizes=150x1500,1500x15000]
      [--reference_blocks=1] [--bfloat16] [--retrieval_videos=100000]
      [--out=eval_throughput.json]

Random inputs of VATEX's shapes (20 frames of 1024-d features, captions of
15-30 words with 4 verb and 6 noun nodes) go through the project's real HGR
encoders (random weights, width --hidden) and HGR scores, two ways:

- reference: the official evaluation (hgr_v2t, RoleGraphMatchModel
  .evaluate_scores): for each block of --block videos, every caption is
  encoded again, block by block, and scored with the attended frame vectors
  materialised, (videos, captions, phrases, dim) per block pair
  (`matching.phrase_frame_scores_reference`).
- fast: `evaluate.Evaluator`: every video and caption encoded once, scores
  in tiles sized by the memory budget, without attended vectors.
- fast_bf16 (--bfloat16): the same with bfloat16 matrix products.

Each variant runs in its own process, so its peak resident memory
(getrusage ru_maxrss, the whole process: Python, TensorFlow, JAX, inputs) is
its own. With --reference_blocks=N the reference stops after N video blocks
and its time is extrapolated linearly to all blocks (each block does the same
work), marked "extrapolated" in the table and the JSON. The scores the
reference did compute are compared with the fast path's.

Achieved FLOP/s counts only the unavoidable frame-phrase products,
2 * videos * captions * (verbs + nouns) * frames * hidden, over the wall time.

--retrieval_videos > 0 also streams that many random encoded videos
(width --retrieval_dim) past --retrieval_queries encoded queries and keeps the
top --k per query (`retrieval.streaming_top_k`): the collection is generated
chunk by chunk and never held, nor is the score matrix.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

from hgr_jax import platform

_SIZES = flags.DEFINE_list('sizes', ['150x1500', '500x5000', '1500x15000'],
                           'Problem sizes, VIDEOSxCAPTIONS.')
_FRAMES = flags.DEFINE_integer('frames', 20, 'Frames per video.')
_WORDS = flags.DEFINE_integer('words', 30, 'Words per caption (max).')
_VERBS = flags.DEFINE_integer('verbs', 4, 'Verb nodes per caption.')
_NOUNS = flags.DEFINE_integer('nouns', 6, 'Noun nodes per caption.')
_FEATURE_DIM = flags.DEFINE_integer('feature_dim', 1024, 'Frame features.')
_HIDDEN = flags.DEFINE_integer('hidden', 1024, 'Embedding width (HGR: 1024).')
_VOCAB = flags.DEFINE_integer('vocab', 10_000, 'Vocabulary size.')
_BLOCK = flags.DEFINE_integer('block', 100, 'Reference video/caption block.')
_BATCH = flags.DEFINE_integer('batch', 300, 'Fast path encoder batch.')
_REFERENCE_BLOCKS = flags.DEFINE_integer(
    'reference_blocks', 1, 'Video blocks the reference runs before its time '
    'is extrapolated; 0 runs them all.')
_BUDGET = flags.DEFINE_float('budget_gb', None, 'Fast path tile budget; '
                             'default: evaluate.default_budget_gb.')
_BFLOAT16 = flags.DEFINE_bool('bfloat16', True, 'Also time fast_bf16.')
_RETRIEVAL_VIDEOS = flags.DEFINE_integer('retrieval_videos', 100_000,
                                         'Streamed videos; 0 skips it.')
_RETRIEVAL_QUERIES = flags.DEFINE_integer('retrieval_queries', 1000,
                                          'Retrieval queries.')
_RETRIEVAL_DIM = flags.DEFINE_integer('retrieval_dim', 64,
                                      'Width of the streamed encodings.')
_RETRIEVAL_CHUNK = flags.DEFINE_integer('retrieval_chunk', 1000,
                                        'Videos per streamed chunk.')
_K = flags.DEFINE_integer('k', 10, 'Retrieval results per query.')
_OUT = flags.DEFINE_string('out', 'eval_throughput.json', 'JSON output.')
# Internal: run one variant in this process and print its JSON result.
_VARIANT = flags.DEFINE_string('variant', None, 'Internal.')
_SIZE = flags.DEFINE_string('size', None, 'Internal.')
_SCORES_PATH = flags.DEFINE_string('scores_path', None, 'Internal.')


def _peak_rss_gb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _frame_phrase_flops(videos, captions, dim):
  return 2.0 * videos * captions * (_VERBS.value + _NOUNS.value) * \
      _FRAMES.value * dim


def random_inputs(num_videos, num_captions, seed=0):
  """Frames and captions of VATEX's shapes, as the input pipeline gives them."""
  rng = np.random.default_rng(seed)
  frames, words = _FRAMES.value, _WORDS.value
  videos = {
      'frames': rng.standard_normal(
          (num_videos, frames, _FEATURE_DIM.value), np.float32),
      'frame_mask': np.arange(frames)[None] < rng.integers(
          frames // 2, frames + 1, (num_videos, 1)),
  }
  lengths = rng.integers(15, words + 1, num_captions).astype(np.int32)
  verbs, nouns = _VERBS.value, _NOUNS.value

  def spans(count, width):
    # Node i covers `width` words from a random start inside the caption.
    starts = rng.integers(0, 15 - width, (num_captions, count))
    positions = np.arange(words)[None, None]
    return (positions >= starts[..., None]) & (
        positions < starts[..., None] + width)

  nodes = 1 + verbs + nouns
  adjacency = np.zeros((num_captions, nodes, nodes), np.float32)
  adjacency[:, 1:1 + verbs, 0] = 1.0
  adjacency[:, 1 + verbs:, 1] = 1.0
  adjacency[:, 1, 1 + verbs:] = 1.0
  adjacency /= np.maximum(adjacency.sum(-1, keepdims=True), 1.0)
  captions = {
      'token_ids': rng.integers(3, _VOCAB.value, (num_captions, words),
                                dtype=np.int32),
      'length': lengths,
      'verb_masks': spans(verbs, 1),
      'noun_masks': spans(nouns, 3),
      'node_roles': rng.integers(0, 16, (num_captions, verbs + nouns),
                                 dtype=np.int32),
      'adjacency': adjacency,
  }
  return videos, captions


def _model_and_params():
  import jax  # pylint: disable=g-import-not-at-top
  from configs import vatex  # pylint: disable=g-import-not-at-top
  from hgr_jax import models  # pylint: disable=g-import-not-at-top
  config = vatex.get_config('hgr')
  config.model.hidden_size = _HIDDEN.value
  model = models.create_model(config, _VOCAB.value)
  videos, captions = random_inputs(2, 2)
  batch = {**videos, **captions}
  variables = jax.jit(lambda r: model.init(r, batch))(jax.random.PRNGKey(0))
  return model, jax.device_get(variables)


def _rows(tree, start, size):
  """Rows [start, start + size) of every array, zero-padded to `size`."""
  def take(x):
    part = x[start:start + size]
    return np.pad(part, [(0, size - len(part))] + [(0, 0)] * (x.ndim - 1))
  return {k: take(v) for k, v in tree.items()}


def run_reference(num_videos, num_captions, scores_path):
  """The official evaluate_scores loop; returns timing and peak memory."""
  import jax  # pylint: disable=g-import-not-at-top
  from hgr_jax.models import matching  # pylint: disable=g-import-not-at-top
  model, params = _model_and_params()
  videos, captions = random_inputs(num_videos, num_captions)
  block = _BLOCK.value
  sigma = model.attention_sigma

  @jax.jit
  def encode_videos(params, batch):
    return model.apply(params, batch['frames'], batch['frame_mask'],
                       method=model.encode_video)

  @jax.jit
  def caption_block_scores(params, video, batch):
    text = model.apply(params, batch, method=model.encode_text)
    scores = {
        'global': matching.cosine_matrix(video['event'], text['sentence']),
        'verb': matching.phrase_frame_scores_reference(
            video['actions'], video['frame_mask'], text['verbs'],
            text['verb_mask'], sigma),
        'noun': matching.phrase_frame_scores_reference(
            video['entities'], video['frame_mask'], text['nouns'],
            text['noun_mask'], sigma),
    }
    return (scores['global'] + scores['verb'] + scores['noun']) / 3

  video_blocks = -(-num_videos // block)
  timed_blocks = video_blocks if _REFERENCE_BLOCKS.value <= 0 else min(
      video_blocks, _REFERENCE_BLOCKS.value)
  # Compile outside the timing, as the fast path's compile is excluded too.
  jax.block_until_ready(caption_block_scores(
      params, encode_videos(params, _rows(videos, 0, block)),
      _rows(captions, 0, block)))
  rows = []
  start = time.perf_counter()
  for v in range(0, timed_blocks * block, block):
    video = encode_videos(params, _rows(videos, v, block))
    row = [np.asarray(caption_block_scores(params, video,
                                           _rows(captions, c, block)))
           for c in range(0, num_captions, block)]
    rows.append(np.concatenate(row, axis=1)[:, :num_captions])
  seconds = time.perf_counter() - start
  scores = np.concatenate(rows)[:num_videos]
  np.save(scores_path, scores)
  return dict(seconds=seconds * video_blocks / timed_blocks,
              measured_seconds=seconds, blocks_timed=timed_blocks,
              blocks_total=video_blocks,
              extrapolated=timed_blocks < video_blocks,
              peak_rss_gb=_peak_rss_gb())


def run_fast(num_videos, num_captions, scores_path, bfloat16):
  """`evaluate.Evaluator`; returns timing and peak memory."""
  import jax  # pylint: disable=g-import-not-at-top
  from hgr_jax import evaluate  # pylint: disable=g-import-not-at-top
  from hgr_jax import sharding  # pylint: disable=g-import-not-at-top
  model, params = _model_and_params()
  videos, captions = random_inputs(num_videos, num_captions)
  evaluator = evaluate.Evaluator(
      model, sharding.data_mesh(jax.local_devices()), _BATCH.value,
      _BUDGET.value, bfloat16)

  def run(videos, captions):
    encoded_videos = evaluator.encode_videos(params, [videos])
    encoded_captions = evaluator.encode_captions(params, [captions])
    return evaluator.score_matrix(params, encoded_videos, encoded_captions)

  # Compiles the encoders and the tile scorer (sizes do not matter).
  small_videos, small_captions = random_inputs(min(num_videos, 64),
                                               min(num_captions, 640), seed=1)
  run(small_videos, small_captions)
  start = time.perf_counter()
  scores = run(videos, captions)
  seconds = time.perf_counter() - start
  np.save(scores_path, scores['fused'])
  # The cost per pair was measured during the run; this only reads it back.
  cost = evaluator.bytes_per_pair(params, None, None)
  tile = evaluate.tile_shape(cost, evaluator.budget_bytes, num_videos,
                             num_captions, evaluator.devices)
  return dict(seconds=seconds, extrapolated=False, tile=list(tile),
              bytes_per_pair=cost,
              budget_gb=evaluator.budget_bytes / 2**30,
              peak_rss_gb=_peak_rss_gb())


def run_retrieval():
  """Streaming top-k over random encodings; returns timing and memory."""
  from hgr_jax import retrieval  # pylint: disable=g-import-not-at-top
  from hgr_jax.models import matching  # pylint: disable=g-import-not-at-top
  num_videos, num_queries = _RETRIEVAL_VIDEOS.value, _RETRIEVAL_QUERIES.value
  dim, frames, chunk = _RETRIEVAL_DIM.value, _FRAMES.value, \
      _RETRIEVAL_CHUNK.value
  verbs, nouns = _VERBS.value, _NOUNS.value
  rng = np.random.default_rng(0)
  queries = {
      'sentence': rng.standard_normal((num_queries, dim), np.float32),
      'verbs': rng.standard_normal((num_queries, verbs, dim), np.float32),
      'nouns': rng.standard_normal((num_queries, nouns, dim), np.float32),
      'verb_mask': np.arange(verbs)[None] < rng.integers(
          1, verbs + 1, (num_queries, 1)),
      'noun_mask': np.arange(nouns)[None] < rng.integers(
          1, nouns + 1, (num_queries, 1)),
  }

  def video_chunks():
    for start in range(0, num_videos, chunk):
      size = min(chunk, num_videos - start)
      chunk_rng = np.random.default_rng([1, start])
      yield {
          'event': chunk_rng.standard_normal((size, dim), np.float32),
          'actions': chunk_rng.standard_normal((size, frames, dim),
                                               np.float32),
          'entities': chunk_rng.standard_normal((size, frames, dim),
                                                np.float32),
          'frame_mask': np.arange(frames)[None] < chunk_rng.integers(
              frames // 2, frames + 1, (size, 1)),
      }

  def fused(videos, queries):
    return matching.hgr_scores(videos, queries, 4.0)['fused']

  start = time.perf_counter()
  result = retrieval.streaming_top_k(fused, queries, video_chunks(), _K.value,
                                     chunk)
  seconds = time.perf_counter() - start
  assert np.all(result.indices >= 0) and np.all(np.isfinite(result.scores))
  assert np.all(np.diff(result.scores, axis=1) <= 0)
  collection = num_videos * (2 * frames + 1) * dim * 4
  return dict(videos=num_videos, queries=num_queries, dim=dim, k=_K.value,
              chunk=chunk, seconds=seconds,
              collection_gb=collection / 2**30,
              full_matrix_gb=num_videos * num_queries * 4 / 2**30,
              achieved_tflops=2.0 * num_videos * num_queries *
              (verbs + nouns) * frames * dim / seconds / 1e12,
              peak_rss_gb=_peak_rss_gb())


def _child(argv_extra):
  """Runs one variant in a fresh process; returns its JSON result."""
  command = [sys.executable, '-m', 'benchmarks.eval_throughput'] + [
      a for a in sys.argv[1:] if not a.startswith(('--variant', '--size',
                                                   '--scores_path'))
  ] + argv_extra
  result = subprocess.run(command, capture_output=True, text=True,
                          check=False)
  if result.returncode:
    raise RuntimeError(f'{argv_extra} failed:\n{result.stderr[-3000:]}')
  return json.loads(result.stdout.strip().splitlines()[-1])


def _device():
  import jax  # pylint: disable=g-import-not-at-top
  return (f'{jax.local_device_count()} x {jax.devices()[0].device_kind}, '
          f'{os.cpu_count()} host cores')


def main(argv):
  del argv
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  if _VARIANT.value:
    num_videos, num_captions = map(int, _SIZE.value.split('x')) \
        if _SIZE.value else (0, 0)
    if _VARIANT.value == 'reference':
      out = run_reference(num_videos, num_captions, _SCORES_PATH.value)
    elif _VARIANT.value == 'retrieval':
      out = run_retrieval()
    else:
      out = run_fast(num_videos, num_captions, _SCORES_PATH.value,
                     _VARIANT.value == 'fast_bf16')
    print(json.dumps(out))
    return

  variants = ['reference', 'fast'] + (['fast_bf16'] if _BFLOAT16.value else [])
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for size in _SIZES.value:
      num_videos, num_captions = map(int, size.split('x'))
      flops = _frame_phrase_flops(num_videos, num_captions, _HIDDEN.value)
      results = {}
      for variant in variants:
        path = os.path.join(tmp, f'{variant}.npy')
        results[variant] = _child([f'--variant={variant}', f'--size={size}',
                                   f'--scores_path={path}'])
        results[variant]['achieved_tflops'] = (
            flops / results[variant]['seconds'] / 1e12)
      reference = np.load(os.path.join(tmp, 'reference.npy'))
      for variant in variants[1:]:
        fast = np.load(os.path.join(tmp, f'{variant}.npy'))
        results[variant]['max_abs_diff_vs_reference'] = float(np.max(np.abs(
            fast[:len(reference)] - reference)))
        results[variant]['speedup'] = (results['reference']['seconds'] /
                                       results[variant]['seconds'])
      rows.append(dict(videos=num_videos, captions=num_captions,
                       frame_phrase_tflop=flops / 1e12, **results))
      print(json.dumps(rows[-1]), flush=True)
  retrieval_result = (_child(['--variant=retrieval'])
                      if _RETRIEVAL_VIDEOS.value else None)

  device = _device()
  print(f'\nHGR evaluation, width {_HIDDEN.value}, {_FRAMES.value} frames, '
        f'{_VERBS.value}+{_NOUNS.value} phrases; real HGR encoders (random '
        f'weights); {device}')
  print(f'{"videos x captions":>18} {"variant":>10} {"seconds":>9} '
        f'{"peak GB":>8} {"TFLOP/s":>8} {"speedup":>8} {"max|diff|":>10}')
  for row in rows:
    for variant in variants:
      r = row[variant]
      mark = ' (extrapolated from %d of %d video blocks)' % (
          r['blocks_timed'], r['blocks_total']) if r['extrapolated'] else ''
      print(f'{row["videos"]:>8} x {row["captions"]:<7} {variant:>10} '
            f'{r["seconds"]:>9.1f} {r["peak_rss_gb"]:>8.2f} '
            f'{r["achieved_tflops"]:>8.3f} {r.get("speedup", 1.0):>8.1f} '
            f'{r.get("max_abs_diff_vs_reference", 0.0):>10.2e}{mark}')
  if retrieval_result:
    r = retrieval_result
    print(f'\nStreaming top-{r["k"]}: {r["videos"]} videos x {r["queries"]} '
          f'queries, width {r["dim"]}, chunks of {r["chunk"]}: '
          f'{r["seconds"]:.1f} s, peak RSS {r["peak_rss_gb"]:.2f} GB '
          f'(collection {r["collection_gb"]:.2f} GB and score matrix '
          f'{r["full_matrix_gb"]:.2f} GB never held), '
          f'{r["achieved_tflops"]:.3f} TFLOP/s')
  with open(_OUT.value, 'w') as f:
    json.dump(dict(device=device, hidden=_HIDDEN.value,
                   encoders='hgr_jax HGR (random weights)',
                   reference_block=_BLOCK.value, rows=rows,
                   retrieval=retrieval_result), f, indent=2)


if __name__ == '__main__':
  app.run(main)
