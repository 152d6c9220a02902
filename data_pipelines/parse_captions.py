"""Writes role graphs (sent2rolegraph.augment.json) for a caption file.

  # Parse captions with spaCy (no network, no GPU):
  python -m data_pipelines.parse_captions --captions=ref_captions.json \
      --out=sent2rolegraph.augment.json
  # Or convert existing AllenNLP SRL output (sentence -> {words, verbs});
  # captions it lacks, if --captions is given, are parsed with spaCy:
  python -m data_pipelines.parse_captions --srl=sent2srl.json \
      [--captions=ref_captions.json] --out=sent2rolegraph.augment.json

`--captions` is the HGR release's ``ref_captions.json``: video id -> list of
captions. Captions are normalised as the release's are (lower-case, no
punctuation, see `caption_text`; `--no_normalise` keeps them as they are,
and warns if they hold punctuation), and the output maps every distinct
normalised caption to ``[nodes, edges]`` in the release format (see
`role_graph`); the dataset builders look graphs up by the normalised
caption. A caption of several sentences ("A man walks in. He sits down.")
is split at its full stops first; each sentence is parsed alone and the
caption's graph is the union of theirs (`srl_import.concatenate`). Empty
captions are skipped and counted.

No sentence stops the run: one whose parse or rules raise gets a fallback
graph (its noun chunks and verbs, as the release's augmentation) and is
listed with its error in the failures file (`--failures`, JSON lines). A
summary (sentences without a frame, verbs without a subject, fallback
graphs, nodes per role next to the official release) ends the run.

Imports spaCy, lemminflect and the project's graph code only: no
TensorFlow, no JAX (see the light install in the README).
"""

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

from data_pipelines import caption_parser
from data_pipelines import caption_text
from data_pipelines import graph_summary
from data_pipelines import srl_import

_CAPTIONS = flags.DEFINE_string(
    'captions', None, 'ref_captions.json: video id -> list of captions.')
_SRL = flags.DEFINE_string(
    'srl', None, 'AllenNLP SRL output: sentence -> {"words", "verbs"}.')
_OUT = flags.DEFINE_string('out', None, 'Output sent2rolegraph JSON.')
_MODEL = flags.DEFINE_string('model', caption_parser.DEFAULT_MODEL,
                             'Installed spaCy English pipeline.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 256,
                                   'Sentences per nlp.pipe batch.')
_NO_NORMALISE = flags.DEFINE_bool(
    'no_normalise', False, 'Parse captions as they are, instead of '
    'lower-casing them and removing punctuation as the HGR release does.')


_FAILURES = flags.DEFINE_string(
    'failures', None, 'JSON lines file listing the sentences that got a '
    'fallback graph, with their errors; default: --out with the extension '
    '.failures.jsonl.')


class InputError(ValueError):
  """An input or output file that cannot be used; the message says why."""


def _load_json(path, what):
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise InputError(f'{path}: no such file (the {what}).') from None
  except json.JSONDecodeError as e:
    raise InputError(f'{path} is not valid JSON ({e}); pass the {what}.'
                     ) from None
  except (OSError, UnicodeDecodeError) as e:
    raise InputError(f'{path} cannot be read as the {what}: {e}.') from None


def read_captions(path):
  """Captions of a ref_captions.json file, in file order."""
  ref_captions = _load_json(path, 'ref_captions.json of the release')
  if not isinstance(ref_captions, dict) or not all(
      isinstance(v, list) and all(isinstance(s, str) for s in v)
      for v in ref_captions.values()):
    raise InputError(
        f'{path} must map each video id to a list of caption strings, like '
        'the HGR release\'s annotation/RET/ref_captions.json.')
  return [s for v in ref_captions.values() for s in v]


def read_srl(path):
  """sentence -> AllenNLP SRL prediction, checked for the expected keys."""
  sent2srl = _load_json(path, 'AllenNLP SRL output')
  for sentence, srl in (sent2srl.items() if isinstance(sent2srl, dict)
                        else [(None, None)]):
    if not isinstance(srl, dict) or not {'words', 'verbs'} <= set(srl):
      raise InputError(
          f'{path} must map each sentence to an AllenNLP SRL prediction '
          '{"words": [...], "verbs": [{"verb": ..., "tags": [...]}]}; '
          f'the entry for {sentence!r} is not one.')
  return sent2srl


def check_writable(path):
  """Raises InputError unless `path` can be written (before any parsing)."""
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.isdir(path):
    raise InputError(f'--out={path} is a folder; name the JSON file to '
                     'write.')
  if not os.path.isdir(folder):
    raise InputError(f'--out={path}: the folder {folder} does not exist; '
                     'create it first.')
  if not os.access(folder, os.W_OK) or (
      os.path.exists(path) and not os.access(path, os.W_OK)):
    raise InputError(f'--out={path} cannot be written (permission denied).')


def warn_punctuation(captions):
  """Warns that `--no_normalise` keeps the punctuation of these captions."""
  marked = [c for c in captions if caption_text.has_punctuation(c)]
  if marked:
    logging.warning(
        '--no_normalise: %d of %d captions hold punctuation (first: %r). '
        'They are parsed as written, split into sentences at full stops, '
        'but every other mark stays part of its word ("skis," is not the '
        'verb "skis") and the graphs are keyed by the captions as written. '
        'Leave out --no_normalise to lower-case them and strip punctuation '
        'as the HGR release does.', len(marked), len(captions), marked[0])


def failures_path(out, failures=None):
  """--failures, or --out with the extension .failures.jsonl."""
  return failures or os.path.splitext(out)[0] + '.failures.jsonl'


def write_failures(path, failures):
  with open(path, 'w') as f:
    for sentence, error in failures.items():
      f.write(json.dumps(dict(sentence=sentence, error=error)) + '\n')


def main(argv):
  del argv
  if not _OUT.value or not (_CAPTIONS.value or _SRL.value):
    raise app.UsageError('Pass --out and --captions and/or --srl.')
  failures_file = failures_path(_OUT.value, _FAILURES.value)
  try:
    check_writable(_OUT.value)
    check_writable(failures_file)
    sent2srl = read_srl(_SRL.value) if _SRL.value else {}
    captions = read_captions(_CAPTIONS.value) if _CAPTIONS.value else []
  except InputError as e:
    sys.exit(f'parse_captions: {e}')
  graphs, srl_failures, failures = {}, {}, {}
  nlp = caption_parser.load_pipeline(_MODEL.value)
  if sent2srl:
    # A prediction that cannot be converted is listed, and parsed instead.
    graphs = srl_import.srl_to_graphs(
        sent2srl, lambda words: caption_parser.parse_words(
            nlp, words, _BATCH_SIZE.value), failures=srl_failures)
    logging.info('Converted the SRL output of %d sentences.', len(graphs))
  if _NO_NORMALISE.value:
    warn_punctuation(captions)
  paragraphs, empty = caption_parser.caption_sentences(
      captions, not _NO_NORMALISE.value)
  sentences = dict.fromkeys(s for parts in paragraphs.values() for s in parts)
  missing = list(dict.fromkeys(
      s for key, parts in paragraphs.items() if key not in graphs
      for s in parts if s not in graphs))
  if sent2srl and missing:
    logging.warning('%d of %d sentences have no SRL output; parsing them.',
                    len(missing), len(sentences))
  parsed = caption_parser.parse_captions(
      missing, nlp, batch_size=_BATCH_SIZE.value, failures=failures)
  graphs.update(caption_parser.paragraph_graphs(paragraphs,
                                                {**graphs, **parsed}))
  with open(_OUT.value, 'w') as f:
    json.dump(graphs, f)
  write_failures(failures_file, {**srl_failures, **failures})
  logging.info('Wrote %d role graphs to %s.', len(graphs), _OUT.value)
  print(graph_summary.describe(graph_summary.summarise(graphs, empty)))
  srl_note = (f'; {len(srl_failures)} SRL predictions could not be '
              'converted (parsed instead)' if srl_failures else '')
  print(f'{len(failures)} sentences got a fallback graph (noun chunks and '
        f'verbs) because a rule raised{srl_note}; listed with the errors in '
        f'{failures_file}.')


def run():
  """Console entry point (hgr-parse-captions)."""
  app.run(main)


if __name__ == '__main__':
  run()
