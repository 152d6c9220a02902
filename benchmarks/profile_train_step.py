r"""Where one train step's time goes: its parts timed apart, with their FLOPs.

  python -m benchmarks.profile_train_step [--config=configs/vatex.py]
      [--batch_sizes=64,128] [--word_lengths=30,16] [--repeats=5]
      [--vocab_size=10000] [--feature_dim=0]
      [--config.model.gru_matmul_dtype=float32]

Builds the config's model at its sizes (default: HGR at width 1024 on
1024-d features, 20 frames, 30 words, bfloat16 GRU products) and a random
batch whose caption lengths follow a VATEX-like distribution (2-23 words,
median 8), padded to each of --word_lengths. Each part is its own jitted
function, timed after a warm-up call as the median of --repeats calls,
each blocked on:

  step          the train step as training runs it (loss, grads, Adam)
  loss+grads    the loss and its gradient (no optimiser)
  loss          the forward pass of the loss alone
  words         word embedding + BiGRU, forward and backward
  text          the whole text encoder (BiGRU, pooling, GCN), fwd + bwd
  video         the video encoder, fwd + bwd
  scores+loss   scores and hinge from fixed encodings, fwd + bwd
  adam          the optimiser update alone

Parts overlap (text includes words; loss+grads includes text, video and
scores+loss), so the shares are read by subtraction. FLOPs are XLA's cost
analysis of each compiled part.
"""

import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import optax

from ml_collections import config_flags

from benchmarks import random_batches
from hgr_jax import models
from hgr_jax import platform
from hgr_jax import sharding
from hgr_jax import train
from hgr_jax.models import text_encoders

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/vatex.py')
_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['64', '128'], 'Batches.')
_WORD_LENGTHS = flags.DEFINE_list('word_lengths', ['30', '16'],
                                  'Caption axes the batch is padded to.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed calls per part.')
_VOCAB_SIZE = flags.DEFINE_integer('vocab_size', 10_000, 'Words.')
_FEATURE_DIM = flags.DEFINE_integer(
    'feature_dim', 0, "Frame feature size; 0: the config's feature_dim_hint.")
_PARTS = flags.DEFINE_list(
    'parts', ['step', 'loss+grads', 'loss', 'words', 'text', 'video',
              'scores+loss', 'adam'], 'Parts to time.')


def _sum_outputs(tree):
  """Sum of every float leaf: a scalar whose gradient reaches all of them."""
  return sum(jnp.sum(x) for x in jax.tree.leaves(tree)
             if jnp.issubdtype(x.dtype, jnp.floating))


def parts(model, config, state, batch):
  """name -> (function, args): the jitted parts of the module docstring.

  The batch is an argument of every part, never a closed-over constant:
  XLA would fold what depends on it alone (the packed layout of the
  captions, the choice of the BiGRU's packed or unpacked branch) and time
  a cheaper program than the train step runs.
  """
  rng = jax.random.PRNGKey(1)
  variables = lambda params: {'params': params,
                              'batch_stats': state.batch_stats}
  rngs = {'dropout': rng}

  def encoded(params, batch, method):
    return model.apply(variables(params), batch, rngs=rngs,
                       method=method, mutable=['batch_stats'])[0]

  words_module = text_encoders.WordStates(
      model.vocab_size, model.word_dim, model.hidden_size,
      model.text_dropout, gru_matmul_dtype=model.gru_matmul_dtype)
  # HGR's and VSE++'s word encoder; the other models name theirs apart.
  words_params = state.params.get('text_encoder', {}).get('words')

  def words(params, batch):
    return _sum_outputs(words_module.apply(
        {'params': params}, batch['token_ids'], batch['length'], True,
        rngs=rngs))

  def text(params, batch):
    return _sum_outputs(encoded(
        params, batch, lambda m, b: m.encode_text(b, train=True)))

  def video(params, batch):
    return _sum_outputs(encoded(
        params, batch, lambda m, b: m.encode_video(b['frames'],
                                                   b['frame_mask'],
                                                   train=True)))

  outputs = jax.jit(lambda p, b: encoded(
      p, b, lambda m, b: m.train_outputs(b, train=True)))(state.params, batch)

  def scores_and_loss(video, text, batch):
    outs = {'video': video, 'text': text,
            'scores': model.apply(variables(state.params), video, text,
                                  method=model.scores)}
    return model.apply(variables(state.params), outs, batch,
                       method=model.loss)[0]

  tx = train.create_optimizer(config)
  return {
      'step': (lambda s, b: train.train_step(s, b, model), (state, batch)),
      'loss+grads': (lambda p, b: train.loss_and_grads(
          p, state.batch_stats, b, rng, model), (state.params, batch)),
      'loss': (lambda p, b: model.apply(
          variables(p), b, rngs=rngs, mutable=['batch_stats'],
          method=model.train_loss)[0][0], (state.params, batch)),
      **({'words': (jax.grad(words), (words_params, batch))}
         if words_params is not None else {}),
      'text': (jax.grad(text), (state.params, batch)),
      'video': (jax.grad(video), (state.params, batch)),
      # Models whose train outputs hold their 'video' and 'text' encodings.
      **({'scores+loss': (jax.grad(scores_and_loss, argnums=(0, 1),
                                   allow_int=True),
                          (outputs['video'], outputs['text'], batch))}
         if 'text' in outputs else {}),
      'adam': (lambda g, s, p: optax.apply_updates(p, tx.update(g, s, p)[0]),
               (state.params, state.opt_state, state.params)),
  }


def time_part(function, args, repeats):
  """(median seconds of `repeats` blocked calls, XLA's FLOPs) of `function`."""
  compiled = jax.jit(function).lower(*args).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  jax.block_until_ready(compiled(*args))
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    seconds.append(time.perf_counter() - start)
  return statistics.median(seconds), float(cost.get('flops', 0.0))


def main(argv):
  del argv
  platform.configure_xla_cpu()  # Before JAX starts its CPU backend.
  config = _CONFIG.value
  feature_dim = _FEATURE_DIM.value or config.feature_dim_hint
  model = models.create_model(config, _VOCAB_SIZE.value)
  mesh = sharding.data_mesh()
  print(f'{config.model_name}, width {config.model.hidden_size}, GRU '
        f'products {config.model.gru_matmul_dtype}, {feature_dim}-d features, '
        f'{jax.device_count()} x {jax.devices()[0].device_kind}; median of '
        f'{_REPEATS.value} blocked calls')
  print(f'{"batch":>5} {"words":>5} {"part":>12} {"s":>8} {"GFLOP":>8}')
  for batch_size in map(int, _BATCH_SIZES.value):
    for max_words in map(int, _WORD_LENGTHS.value):
      batch = random_batches.random_batch(
          config, batch_size, max_words, feature_dim, _VOCAB_SIZE.value,
          extra_features=model.extra_train_features())
      state = train.create_train_state(model, config, batch, mesh)
      for name, (function, args) in parts(model, config, state,
                                          batch).items():
        if name not in _PARTS.value:
          continue
        seconds, flops = time_part(function, args, _REPEATS.value)
        print(f'{batch_size:>5} {max_words:>5} {name:>12} {seconds:>8.3f} '
              f'{flops / 1e9:>8.1f}', flush=True)


if __name__ == '__main__':
  app.run(main)
