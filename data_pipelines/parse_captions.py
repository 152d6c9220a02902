"""Writes role graphs (sent2rolegraph.augment.json) for a caption file.

  # Parse captions with spaCy (no network, no GPU):
  python -m data_pipelines.parse_captions --captions=ref_captions.json \
      --out=sent2rolegraph.augment.json
  # Or convert existing AllenNLP SRL output (sentence -> {words, verbs});
  # captions it lacks, if --captions is given, are parsed with spaCy:
  python -m data_pipelines.parse_captions --srl=sent2srl.json \
      [--captions=ref_captions.json] --out=sent2rolegraph.augment.json

`--captions` is the HGR release's ``ref_captions.json``: video id -> list of
captions. The output maps every distinct caption to ``[nodes, edges]`` in
the release format (see `role_graph`).
"""

import json

from absl import app
from absl import flags
from absl import logging

from data_pipelines import caption_parser
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


def read_captions(path):
  """Distinct captions of a ref_captions.json file, in file order."""
  with open(path) as f:
    ref_captions = json.load(f)
  if not isinstance(ref_captions, dict) or not all(
      isinstance(v, list) and all(isinstance(s, str) for s in v)
      for v in ref_captions.values()):
    raise ValueError(
        f'{path} must map each video id to a list of caption strings, like '
        'the HGR release\'s annotation/RET/ref_captions.json.')
  return list(dict.fromkeys(s for v in ref_captions.values() for s in v))


def read_srl(path):
  """sentence -> AllenNLP SRL prediction, checked for the expected keys."""
  with open(path) as f:
    sent2srl = json.load(f)
  for sentence, srl in (sent2srl.items() if isinstance(sent2srl, dict)
                        else [(None, None)]):
    if not isinstance(srl, dict) or not {'words', 'verbs'} <= set(srl):
      raise ValueError(
          f'{path} must map each sentence to an AllenNLP SRL prediction '
          '{"words": [...], "verbs": [{"verb": ..., "tags": [...]}]}; '
          f'the entry for {sentence!r} is not one.')
  return sent2srl


def main(argv):
  del argv
  if not _OUT.value or not (_CAPTIONS.value or _SRL.value):
    raise app.UsageError('Pass --out and --captions and/or --srl.')
  graphs = {}
  nlp = None
  if _SRL.value:
    sent2srl = read_srl(_SRL.value)
    nlp = caption_parser.load_pipeline(_MODEL.value)
    graphs = srl_import.srl_to_graphs(
        sent2srl, lambda words: caption_parser.parse_words(
            nlp, words, _BATCH_SIZE.value))
    logging.info('Converted the SRL output of %d sentences.', len(graphs))
  if _CAPTIONS.value:
    captions = read_captions(_CAPTIONS.value)
    missing = [s for s in captions if s not in graphs]
    if _SRL.value and missing:
      logging.warning('%d of %d captions have no SRL output; parsing them.',
                      len(missing), len(captions))
    nlp = nlp or caption_parser.load_pipeline(_MODEL.value)
    graphs.update(caption_parser.parse_captions(
        missing, nlp, batch_size=_BATCH_SIZE.value))
  with open(_OUT.value, 'w') as f:
    json.dump(graphs, f)
  logging.info('Wrote %d role graphs to %s.', len(graphs), _OUT.value)


if __name__ == '__main__':
  app.run(main)
