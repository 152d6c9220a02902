"""The command line: `python -m hgr_jax.search index|query ...`."""

import sys

from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from data_pipelines import release_layout
from hgr_jax import export as export_lib
from hgr_jax import platform
from hgr_jax.search import first_stage
from hgr_jax.search import index_format as fmt
from hgr_jax.search import queries as queries_lib
from hgr_jax.search import reader
from hgr_jax.search import searcher as searcher_lib
from hgr_jax.search import writer

FLAGS = flags.FLAGS


def define_flags():
  config_flags.DEFINE_config_file(
      'config', None, 'index: the experiment config whose --split to index.',
      lock_config=True)
  flags.DEFINE_string('export', None, 'Export directory (python -m '
                      'hgr_jax.export).')
  flags.DEFINE_string('features', None, 'index: HDF5 file {video id: (frames, '
                      'dim)} of the videos to index.')
  flags.DEFINE_string('split', 'test', 'index with --config: the split to '
                      'index.')
  flags.DEFINE_string('out', None, 'index: the index folder to write.')
  flags.DEFINE_integer('chunk_size', 1000, 'index: videos per shard (memory '
                       'holds one).')
  flags.DEFINE_integer('batch_size', 256, 'index: videos per encoder call.')
  flags.DEFINE_enum('token_dtype', fmt.DEFAULT_TOKEN_DTYPE, fmt.TOKEN_DTYPES,
                    'index: storage of the frame (clip) vectors; int8 reads '
                    'a quarter of float32\'s bytes per candidate.')
  flags.DEFINE_bool('ann', True, 'index: build the ANN first stage (FAISS '
                    'IVF-PQ) after the shards.')
  flags.DEFINE_string('index', None, 'query: the index folder.')
  flags.DEFINE_string('query', None, 'query: the sentence to search for.')
  flags.DEFINE_string('queries_file', None, 'query: a text file, one query '
                      'per line.')
  flags.DEFINE_integer('k', 10, 'query: results per query.')
  flags.DEFINE_integer('candidates', searcher_lib.DEFAULT_CANDIDATES,
                       'query: videos the global first stage keeps for the '
                       'full score; 0 scores every video (exhaustive).')
  flags.DEFINE_enum('first_stage', 'ann', first_stage.FIRST_STAGES,
                    'query: ann (the index\'s FAISS IVF-PQ) or exact (every '
                    'global vector in memory, scanned).')
  flags.DEFINE_integer('nprobe', 0, 'query: ANN lists scanned per query; 0: '
                       'the index\'s default.')
  flags.DEFINE_integer('refine', 0, 'query: ANN candidates per candidate '
                       'kept, by exact cosine; 0: the default.')
  flags.DEFINE_bool('explain', False, 'query: print, in every result, the '
                    'frames each verb and noun phrase attends to most (HGR, '
                    'HANet), or each word\'s best frames and each phrase\'s '
                    'best clips (HCMI).')


def format_results(query, hits, explain=False, hooks=None):
  """A printable table of a query's hits (and alignments with `explain`).

  `hooks` (the model's `SearchHooks`) names the unit of each explained kind.
  """
  hooks = hooks or _NO_HOOKS
  levels = [level for level in hits[0].scores if level != 'fused']
  lines = [f'Query: {query.text}']
  lines += [f'  warning: {w}' for w in query.warnings]
  id_width = max(8, *(len(h.video_id) for h in hits))
  lines.append(f'{"rank":>4}  {"video":<{id_width}}  {"fused":>7}' +
               ''.join(f'  {level:>{max(7, len(level))}}'
                       for level in levels))
  for rank, hit in enumerate(hits, 1):
    lines.append(
        f'{rank:>4}  {hit.video_id:<{id_width}}  {hit.scores["fused"]:7.4f}' +
        ''.join(f'  {hit.scores[level]:>{max(7, len(level))}.4f}'
                for level in levels))
    if explain:
      for kind, label, unit, tokens in searcher_lib.explained_slots(
          query, hit, hooks):
        listed = ', '.join(f'{t} ({w:.2f})' for t, w in tokens)
        lines.append(f'        {kind} {label}: {unit}s {listed}')
  return '\n'.join(lines)


class _NoHooks:
  alignments = {}


_NO_HOOKS = _NoHooks()


def _index_command():
  if bool(FLAGS.features) == bool(FLAGS['config'].value):
    raise fmt.SearchError('index needs exactly one of --features=FILE.hdf5 '
                          'or --config=CONFIG (with --split).')
  if not FLAGS.out:
    raise fmt.SearchError('index needs --out=INDEX, the folder to write.')
  exported = export_lib.load(FLAGS.export)
  source = (writer.hdf5_source(FLAGS.features) if FLAGS.features
            else writer.dataset_source(FLAGS['config'].value, FLAGS.split))
  header = writer.build_index(exported, source, FLAGS.out, FLAGS.chunk_size,
                              FLAGS.batch_size, token_dtype=FLAGS.token_dtype,
                              ann=FLAGS.ann)
  print(f'Indexed {header["num_videos"]} videos into {FLAGS.out}.')


def _query_command():
  if not FLAGS.index:
    raise fmt.SearchError('query needs --index=INDEX (python -m '
                          'hgr_jax.search index ... --out=INDEX).')
  if bool(FLAGS.query is not None) == bool(FLAGS.queries_file):
    raise fmt.SearchError('query needs exactly one of --query="..." or '
                          '--queries_file=FILE.')
  if FLAGS.queries_file:
    with open(FLAGS.queries_file) as f:
      texts = [line.strip() for line in f if line.strip()]
  else:
    texts = [FLAGS.query]
  exported = export_lib.load(FLAGS.export)
  index = reader.Index(FLAGS.index, exported)
  queries = queries_lib.QueryEncoder(exported).encode(texts)
  searcher = searcher_lib.Searcher(exported, index,
                                   first_stage=FLAGS.first_stage,
                                   nprobe=FLAGS.nprobe, refine=FLAGS.refine)
  text = searcher.encode(queries)
  results = searcher.search(text, FLAGS.k, FLAGS.candidates)
  for q, (query, hits) in enumerate(zip(queries, results)):
    if FLAGS.explain:
      searcher.explain(hits, jax.tree.map(lambda x, q=q: x[q], text))
    print(format_results(query, hits, FLAGS.explain, searcher.hooks))
    print()


def main(argv):
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  commands = {'index': _index_command, 'query': _query_command}
  if len(argv) != 2 or argv[1] not in commands:
    sys.exit('Usage: python -m hgr_jax.search index|query --export=EXPORT '
             '...')
  if not FLAGS.export:
    sys.exit('Error: --export=EXPORT is required (python -m hgr_jax.export '
             'writes one).')
  logging.set_verbosity(logging.WARNING)
  try:
    commands[argv[1]]()
  except (fmt.SearchError, export_lib.ExportError,
          release_layout.ReleaseError) as e:
    sys.exit(f'Error: {e}')
