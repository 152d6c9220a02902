"""The BiGRU's XLA:CPU implementation: packed rows, rows-last loops.

Tuned for YNNPACK's products on XLA:CPU (docs/training_speed.md): the loops
keep rows on the last axis, transposes are materialised between optimisation
barriers, the gradient is written by hand (`gru_scan`), and two captions
share a row where they fit (`pair_rows`), which halves the rows. `bigru`
is the entry point; `hgr_jax.models.bigru.BiGRU` picks it on CPU.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from hgr_jax.models import layers

def _product(a, b):
  """Batched matrix product (z, m, k) x (z, k, n) -> (z, m, n), accumulated
  in float32."""
  return jax.lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,))),
                             preferred_element_type=jnp.float32)


def _swap(x, dtype=None):
  """x with its last two axes swapped (and cast to `dtype`), materialised.
  XLA:CPU would otherwise fold the transpose into the product that makes or
  reads x, which then no longer has the (z, m, k) x (z, k, n) form of
  YNNPACK's products and runs on XLA's own dot (several times slower; in
  bfloat16 it has none). Transposing before the cast is the faster order
  (bfloat16 transposes ran at a quarter of float32's rate)."""
  barrier = jax.lax.optimization_barrier
  return barrier(jnp.swapaxes(barrier(x), -1, -2).astype(dtype or x.dtype))


def _reset(h, reset_t):
  """Zeroes the states (2, hidden, rows) of rows where `reset_t` (rows,)."""
  return jnp.where(reset_t, 0.0, h)


def _at(x, t, axis=1):
  """x[:, t] (along `axis`) of an array at a traced step t."""
  return jax.lax.dynamic_index_in_dim(x, t, axis=axis, keepdims=False)


def _put(x, value, t, axis=1):
  """x with x[:, t] = value (along `axis`)."""
  return jax.lax.dynamic_update_index_in_dim(x, value, t, axis=axis)


def _gru_step(h, x_t, input_bias, kernel_t, hidden_bias):
  """One GRU step of both directions, rows last.

  Args:
    h: (2, hidden, rows) float32 states.
    x_t: (2, 3 * hidden, rows) input projections of this step, without bias.
    input_bias: (2, 3 * hidden).
    kernel_t: (2, 3 * hidden, hidden), the hidden kernel transposed, in the
      products' operand type; hidden_bias: (2, 3 * hidden).

  Returns:
    The new states and what the backward pass reads: the gates r, z, the
    candidate n and the hidden projection of the candidate gate h_n.
  """
  h_t = _product(kernel_t, h.astype(kernel_t.dtype)) + hidden_bias[..., None]
  x_r, x_z, x_n = jnp.split(x_t + input_bias[..., None], 3, axis=1)
  h_r, h_z, h_n = jnp.split(h_t, 3, axis=1)
  r = jax.nn.sigmoid(x_r + h_r)
  z = jax.nn.sigmoid(x_z + h_z)
  n = jnp.tanh(x_n + r * h_n)
  return (1.0 - z) * n + z * h, (r, z, n, h_n)


def _gru_scan_forward(matmul_dtype, inputs, reset, steps, input_kernel,
                      input_bias, hidden_kernel, hidden_bias):
  directions, length, rows, dim = inputs.shape
  hidden = hidden_kernel.shape[1]
  # Operands cast once here, not at every step, and kept for the backward
  # pass. The projections (2, 3 * hidden, length, rows) are made in the
  # layout the loop reads.
  words = inputs.reshape(directions, -1, dim)  # (2, length * rows, dim)
  projected = _product(_swap(input_kernel, matmul_dtype),
                       _swap(words, matmul_dtype))
  projected = projected.reshape(directions, 3 * hidden, length, rows)
  words = words.astype(matmul_dtype)
  input_kernel = input_kernel.astype(matmul_dtype)
  kernel = hidden_kernel.astype(matmul_dtype)
  kernel_t = _swap(hidden_kernel, matmul_dtype)
  zeros = jnp.zeros((directions, length, hidden, rows), jnp.float32)

  def step(t, carry):
    h, outputs = carry
    h, gates = _gru_step(_reset(h, reset[t]), _at(projected, t, axis=2),
                         input_bias, kernel_t, hidden_bias)
    return h, tuple(_put(buffer, value, t)
                    for buffer, value in zip(outputs, (h, *gates)))

  # A while loop to `steps` rather than a scan over `length`: the steps after
  # the longest row are never run (their states stay zero).
  _, (states_t, *gates) = jax.lax.fori_loop(
      0, steps, step, (zeros[:, 0], (zeros,) * 5))
  states = _swap(states_t)
  return states, (words, input_kernel, kernel, states, states_t, gates, reset,
                  steps)


def _gru_scan_backward(matmul_dtype, saved, d_states):
  """The loop runs backwards for the per-step gradients and the biases'
  (sums over rows); the kernels' gradients and the inputs' are then one
  product each over all steps. Autodiff of the loop would instead add a
  (2, hidden, 3 * hidden) product into a carried sum at every step: a small
  product and a large read-modify-write per step. Summing the biases'
  gradients over the stored gradients after the loop costs more than the
  whole loop's row sums on XLA:CPU."""
  words, input_kernel, kernel, states, states_t, (r, z, n, h_n), reset, \
      steps = saved
  directions, length, hidden, rows = states_t.shape
  d_states_t = _swap(d_states)
  # The state before each step, zero where a sequence starts (the loop
  # applies the reset per step, the kernel's gradient to its other factor).
  previous_t = jnp.concatenate(
      [jnp.zeros_like(states_t[:, :1]), states_t[:, :-1]], axis=1)

  def step(i, carry):
    dh, d_r_all, d_z_all, d_n_all, d_n_r_all, d_input_bias, d_hidden_bias = (
        carry)
    t = steps - 1 - i
    z_t, n_t, r_t = _at(z, t), _at(n, t), _at(r, t)
    dh = dh + _at(d_states_t, t)
    d_n = dh * (1.0 - z_t) * (1.0 - n_t * n_t)
    d_r = d_n * _at(h_n, t) * r_t * (1.0 - r_t)
    d_z = dh * (_reset(_at(previous_t, t), reset[t]) - n_t) * z_t * (
        1.0 - z_t)
    d_r_z = jnp.concatenate([d_r, d_z], axis=1)
    d_n_r = d_n * r_t
    d_hidden = jnp.concatenate([d_r_z, d_n_r], axis=1)
    dh = dh * z_t + _product(kernel, d_hidden.astype(kernel.dtype))
    # Stored (2, hidden, length, rows): the products below sum over
    # (length, rows) as one axis. One buffer per gate: the store of their
    # concatenation took the gates' arithmetic into it (1.5 ms per step).
    return (_reset(dh, reset[t]), _put(d_r_all, d_r, t, axis=2),
            _put(d_z_all, d_z, t, axis=2), _put(d_n_all, d_n, t, axis=2),
            _put(d_n_r_all, d_n_r, t, axis=2),
            d_input_bias + jnp.sum(jnp.concatenate([d_r_z, d_n], axis=1),
                                   axis=-1),
            d_hidden_bias + jnp.sum(d_hidden, axis=-1))

  buffer = lambda gates: jnp.zeros((directions, gates, length, rows),
                                   jnp.float32)
  bias = jnp.zeros((directions, 3 * hidden), jnp.float32)
  _, d_r, d_z, d_n, d_n_r, d_input_bias, d_hidden_bias = jax.lax.fori_loop(
      0, steps, step, (jnp.zeros_like(states_t[:, 0]), *(buffer(hidden),) * 4,
                       bias, bias))
  flat = lambda x: x.reshape(directions, 3 * hidden, -1).astype(matmul_dtype)
  # The projections' gradient, and the hidden products' (which differs in
  # the candidate gate by the factor r, and is zero where the previous
  # state was reset): (2, 3 * hidden, length * rows).
  d_projected = flat(jnp.concatenate([d_r, d_z, d_n], axis=1))
  d_hidden = flat(jnp.where(reset, 0.0, jnp.concatenate([d_r, d_z, d_n_r],
                                                         axis=1)))
  previous = jnp.concatenate(
      [jnp.zeros_like(states[:, :1]), states[:, :-1]], axis=1)
  previous = previous.reshape(directions, -1, hidden).astype(matmul_dtype)
  d_inputs = _swap(_product(input_kernel, d_projected)).reshape(
      directions, length, rows, -1)
  d_input_kernel = _swap(_product(d_projected, words))
  d_kernel = _swap(_product(d_hidden, previous))
  return (d_inputs, None, None, d_input_kernel, d_input_bias, d_kernel,
          d_hidden_bias)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def gru_scan(matmul_dtype, inputs, reset, steps, input_kernel, input_bias,
             hidden_kernel, hidden_bias):
  """Runs the GRU of both directions over the first `steps` steps.

  Inside, the loops keep rows on the last axis: YNNPACK then multiplies the
  transposed kernel by the states (forward) and the kernel by the gates'
  gradient (backward). A loop of these products alone at 64 rows in
  bfloat16 ran 0.2 and 1.2 ms faster per step so than with rows first,
  where a quarter of each product was a cost that does not shrink with the
  rows. Rows must not span devices here (`bigru` vmaps over groups).

  Args:
    matmul_dtype: operand type of every product (the input projections,
      the hidden products, their gradients), accumulated in float32; states
      and gates stay float32.
    inputs: (2, length, rows, dim).
    reset: (length, rows) bool, True where a row's state restarts from zero
      (a new sequence starts); the state before step 0 is zero.
    steps: int scalar <= length, the steps to run (the longest row).
    input_kernel: (2, dim, 3 * hidden); input_bias: (2, 3 * hidden);
      hidden_kernel: (2, hidden, 3 * hidden); hidden_bias: (2, 3 * hidden);
      gates ordered r, z, n.

  Returns:
    (2, length, rows, hidden) states, zero from step `steps` on.
  """
  return _gru_scan_forward(matmul_dtype, inputs, reset, steps, input_kernel,
                           input_bias, hidden_kernel, hidden_bias)[0]


gru_scan.defvjp(_gru_scan_forward, _gru_scan_backward)


def pair_rows(lengths, row_length):
  """Pairs sequences two per row for a packed scan: the longest with the
  shortest, the second longest with the second shortest, and so on.

  Args:
    lengths: (batch,) int, batch even.
    row_length: the scan's length.

  Returns:
    first, second: (batch // 2,) indices; row i holds sequence first[i] at
      positions [0, lengths[first[i]]) and second[i] right after it.
    fits: bool scalar, whether every row's two sequences fit in row_length.
  """
  lengths = jnp.asarray(lengths)
  order = jnp.argsort(lengths)
  half = lengths.shape[0] // 2
  first, second = order[::-1][:half], order[:half]
  fits = jnp.all(lengths[first] + lengths[second] <= row_length)
  return first, second, fits


class PairLayout(NamedTuple):
  """Where `pair_rows` puts each caption: for rows (rows, length) arrays,
  `source` caption and `offset` word feeding each position and `reset`
  where a caption starts; for captions (captions,) `row` and (captions,
  length) `read` position of each word's state."""
  source: jax.Array
  offset: jax.Array
  reset: jax.Array
  row: jax.Array
  read: jax.Array


def pair_layout(lengths, row_length):
  """The `PairLayout` of `pair_rows(lengths, row_length)`; lengths (batch,)."""
  batch = lengths.shape[0]
  first, second, _ = pair_rows(lengths, row_length)
  first_length = lengths[first][:, None]
  positions = jnp.arange(row_length)[None, :]
  in_first = positions < first_length
  rows = jnp.arange(batch // 2)
  start = jnp.zeros(batch, jnp.int32).at[second].set(lengths[first])
  return PairLayout(
      source=jnp.where(in_first, first[:, None], second[:, None]),
      offset=jnp.where(in_first, positions, positions - first_length),
      reset=positions == first_length,
      row=jnp.zeros(batch, jnp.int32).at[first].set(rows).at[second].set(rows),
      read=jnp.minimum(start[:, None] + positions, row_length - 1))


def _grouped_scan(inputs, reset, steps, params, matmul_dtype, groups):
  """`gru_scan` on each of `groups` groups of rows.

  `gru_scan` merges the steps and rows axes for its products, which would
  mix rows held by different devices; vmapping over one group of rows per
  device keeps each device's rows to itself.

  Args:
    inputs: (2, length, rows, dim).
    reset: (length, rows) bool, True where a new sequence starts.
    steps: the longest row.
    params: (input_kernel, input_bias, hidden_kernel, hidden_bias).
    matmul_dtype: the products' operand type.
    groups: groups of rows (one per device holding part of the batch).

  Returns:
    (2, length, rows, hidden) states.
  """
  _, length, rows, dim = inputs.shape
  split = groups if rows % groups == 0 else 1
  scan = jax.vmap(functools.partial(gru_scan, matmul_dtype),
                  in_axes=(2, 1, None, None, None, None, None), out_axes=2)
  states = scan(inputs.reshape(2, length, split, rows // split, dim),
                reset.reshape(length, split, rows // split), steps, *params)
  return states.reshape(2, length, rows, -1)


def bigru(x, lengths, params, matmul_dtype, groups, pack_pairs=True):
  """Both directions of the BiGRU, averaged; see `hgr_jax.models.bigru`.

  Args:
    x: (batch, length, dim).
    lengths: (batch,) int.
    params: (input_kernel (2, dim, 3 * hidden), input_bias (2, 3 * hidden),
      hidden_kernel (2, hidden, 3 * hidden), hidden_bias (2, 3 * hidden)).
    matmul_dtype: operand type of every product.
    groups: the number of devices the batch axis is split over; captions
      are paired within each device's share of the batch, so that a sharded
      batch stays sharded through the packed scan.
    pack_pairs: pack two captions per row when every pair fits.

  Returns:
    (batch, length, hidden), zero at padding.
  """
  batch, length, dim = x.shape
  # The backward direction reads each sequence's valid prefix reversed.
  inputs = jnp.stack([x, layers.reverse_valid(x, lengths)])

  def unpacked(inputs):
    states = _grouped_scan(jnp.swapaxes(inputs, 1, 2),
                           jnp.zeros((length, batch), bool), jnp.max(lengths),
                           params, matmul_dtype, groups)
    return jnp.swapaxes(states, 1, 2)

  def pairs(grouped_lengths):
    """pair_rows of each device's share: first, second, fits."""
    return jax.vmap(pair_rows, in_axes=(0, None))(grouped_lengths, length)

  def packed(inputs):
    grouped = inputs.reshape(2, groups, batch // groups, length, dim)
    grouped_lengths = lengths.reshape(groups, -1)
    layout = jax.vmap(pair_layout, in_axes=(0, None))(grouped_lengths,
                                                      length)
    first, second, _ = pairs(grouped_lengths)
    row_lengths = (jnp.take_along_axis(grouped_lengths, first, axis=1) +
                   jnp.take_along_axis(grouped_lengths, second, axis=1))
    # (2, length, groups, rows per group, dim): rows of a group together,
    # and the resets (groups, rows, length) in the same (length, groups,
    # rows) order.
    rows = jax.vmap(lambda x, l: x[:, l.source.T, l.offset.T],
                    in_axes=(1, 0), out_axes=2)(grouped, layout)
    reset = jnp.moveaxis(layout.reset, 2, 0).reshape(length, batch // 2)
    states = _grouped_scan(rows.reshape(2, length, batch // 2, dim), reset,
                           jnp.max(row_lengths), params, matmul_dtype, groups)
    states = states.reshape(2, length, groups, batch // groups // 2, -1)
    states = jax.vmap(lambda s, l: s[:, l.read, l.row[:, None]],
                      in_axes=(2, 0), out_axes=1)(states, layout)
    return states.reshape(2, batch, length, -1)

  def averaged(states):
    """(2, batch, length, hidden) -> the directions' mean (batch, length,
    hidden), zero at padding. Called inside each branch of the cond
    below, so that the result is materialised as the cond's output:
    outside it, XLA:CPU fuses these gathers into every consumer and
    recomputes them there (the phrase max-pooling's reduction over
    (batch, phrases, words, hidden) ran 10x slower for it)."""
    forward, backward = states[0], layers.reverse_valid(states[1], lengths)
    valid = (jnp.arange(length)[None, :] < lengths[:, None])[..., None]
    return jnp.where(valid, (forward + backward) / 2, 0.0)

  if pack_pairs and batch % (2 * groups) == 0:
    fits = pairs(lengths.reshape(groups, -1))[2]
    # The rare unpacked branch is rematerialised: its residuals would
    # otherwise be outputs of the cond that the packed branch fills with
    # zeros at every step (160 MB at batch 128).
    return jax.lax.cond(jnp.all(fits), lambda x: averaged(packed(x)),
                        jax.checkpoint(lambda x: averaged(unpacked(x))),
                        inputs)
  return averaged(unpacked(inputs))
