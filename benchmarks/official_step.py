r"""The official HGR / VSE++ train step (cshizhe/hgr_v2t), timed on our batches.

The worker half of `benchmarks/official_speed.py`; it runs in a Python with
torch and the official code on its path, never imports JAX, and is started
by that benchmark:

  PYTHONPATH=/tmp/official python benchmarks/official_step.py \
      --model=hgr --batches=BATCHES.npz --vocab_size=N --threads=2

It builds the official model with the paper's settings (width 1024, as
t2vretrieval/driver/configs/prepare_*_configs.py) and converts each of our
batches to the official reader's layout beforehand (its collate_fn: frames
and words cut to the batch's longest video and caption; VSE++ reads
mean-pooled frames). Then, for each line 'STEPS' read from stdin, it runs
that many `train_one_batch` calls (forward, backward, Adam) over the
batches in turn and prints their seconds as one JSON list.
"""

import argparse
import json
import logging
import sys
import time

import numpy as np
import torch

import t2vretrieval.models.globalmatch as globalmatch
import t2vretrieval.models.mlmatch as mlmatch


def hgr_model(vocab_size, feature_dim):
  """The official HGR (prepare_mlmatch_configs.py values)."""
  config = mlmatch.RoleGraphMatchModelConfig()
  config.max_frames_in_video = 20
  config.max_words_in_sent = 30
  config.num_verbs, config.num_nouns = 4, 6
  config.attn_fusion, config.simattn_sigma = 'embed', 4
  config.margin, config.max_violation = 0.2, True
  video = config.subcfgs[mlmatch.VISENC]
  video.dim_fts, video.dim_embed, video.dropout = [feature_dim], 1024, 0.2
  video.share_enc, video.num_levels = False, 3
  text = config.subcfgs[mlmatch.TXTENC]
  text.num_words, text.dim_word, text.rnn_hidden_size = vocab_size, 300, 1024
  text.rnn_type, text.bidirectional, text.dropout = 'gru', True, 0.2
  text.num_roles, text.gcn_num_layers = 16, 1
  text.gcn_attention, text.gcn_dropout = True, 0.5
  return mlmatch.RoleGraphMatchModel(config, _logger=_QUIET)


def vsepp_model(vocab_size, feature_dim):
  """The official VSE++ (prepare_globalmatch_configs.py values)."""
  config = globalmatch.GlobalMatchModelConfig()
  config.max_words_in_sent = 30
  config.margin, config.max_violation = 0.2, True
  video = config.subcfgs[globalmatch.VISENC]
  video.dim_fts, video.dim_embed, video.dropout = [feature_dim], 1024, 0.2
  text = config.subcfgs[globalmatch.TXTENC]
  text.num_words, text.dim_word, text.rnn_hidden_size = vocab_size, 300, 1024
  text.rnn_type, text.bidirectional, text.dropout = 'gru', True, 0.2
  return globalmatch.GlobalMatchModel(config, _logger=_QUIET)


_QUIET = logging.getLogger('official')
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def official_batch(model, batch):
  """One of our NumPy batches in the official reader's layout."""
  frame_lens = batch['frame_mask'].sum(1)
  lengths = batch['length']
  words = int(lengths.max())
  if model == 'vsepp':
    mask = batch['frame_mask'][..., None]
    return {'mp_fts': (batch['frames'] * mask).sum(1) / mask.sum(1),
            'caption_ids': batch['token_ids'][:, :words],
            'caption_lens': lengths}
  return {'attn_fts': batch['frames'][:, :int(frame_lens.max())],
          'attn_lens': frame_lens,
          'sent_ids': batch['token_ids'][:, :words],
          'sent_lens': lengths,
          'verb_masks': batch['verb_masks'][:, :, :words],
          'noun_masks': batch['noun_masks'][:, :, :words],
          'node_roles': batch['node_roles'],
          'rel_edges': batch['adjacency']}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--model', choices=['hgr', 'vsepp'], required=True)
  parser.add_argument('--batches', required=True)
  parser.add_argument('--vocab_size', type=int, required=True)
  parser.add_argument('--threads', type=int, default=2)
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  stacked = np.load(args.batches)
  batches = [official_batch(args.model, {k: v[i] for k, v in stacked.items()})
             for i in range(len(stacked['length']))]
  build = hgr_model if args.model == 'hgr' else vsepp_model
  model = build(args.vocab_size, batches[0].get(
      'attn_fts', batches[0].get('mp_fts')).shape[-1])
  model.train_start()
  model.train_one_batch(batches[0], step=None)  # Warm-up.
  print('ready', flush=True)
  index = 0
  for line in sys.stdin:
    seconds = []
    for _ in range(int(line)):
      start = time.perf_counter()
      model.train_one_batch(batches[index % len(batches)], step=None)
      seconds.append(time.perf_counter() - start)
      index += 1
    print(json.dumps(seconds), flush=True)


if __name__ == '__main__':
  main()
