"""Both BiGRU implementations against flax's own GRU cells, on one device and
on meshes of 2, 4 and 8 (forced CPU) devices."""

import os
import re
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hgr_jax import sharding
from hgr_jax.models import bigru
from hgr_jax.models import packed_gru

IMPLEMENTATIONS = ('plain', 'packed')


def flax_reference(params, x, lengths, hidden):
  """Forward/backward nn.RNN(nn.GRUCell) with the BiGRU's weights, averaged,
  zero at padding."""
  def cell_params(direction):
    wi = jnp.split(params['input_kernel'][direction], 3, axis=-1)
    bi = jnp.split(params['input_bias'][direction], 3)
    wh = jnp.split(params['hidden_kernel'][direction], 3, axis=-1)
    bh = jnp.split(params['hidden_bias'][direction], 3)
    # nn.GRUCell has a hidden bias only on the candidate gate: fold the
    # others into the input biases, which sum with them.
    return {
        'ir': {'kernel': wi[0], 'bias': bi[0] + bh[0]},
        'iz': {'kernel': wi[1], 'bias': bi[1] + bh[1]},
        'in': {'kernel': wi[2], 'bias': bi[2]},
        'hr': {'kernel': wh[0]}, 'hz': {'kernel': wh[1]},
        'hn': {'kernel': wh[2], 'bias': bh[2]},
    }
  forward = nn.RNN(nn.GRUCell(hidden))
  backward = nn.RNN(nn.GRUCell(hidden), reverse=True, keep_order=True)
  out_f = forward.apply({'params': {'cell': cell_params(0)}}, x,
                        seq_lengths=lengths)
  out_b = backward.apply({'params': {'cell': cell_params(1)}}, x,
                         seq_lengths=lengths)
  valid = jnp.arange(x.shape[1])[None, :, None] < lengths[:, None, None]
  return jnp.where(valid, (out_f + out_b) / 2, 0.0)


def _random_bigru(seed, lengths=(6, 2, 4), implementation='packed'):
  """A BiGRU(7) with random N(0, 0.25) weights, inputs (batch, 6, 5) and
  `lengths`: (rng, x, lengths, model, params)."""
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(len(lengths), 6, 5)), jnp.float32)
  lengths = jnp.array(lengths)
  model = bigru.BiGRU(7, implementation=implementation)
  params = model.init(jax.random.PRNGKey(0), x, lengths)['params']
  params = jax.tree.map(
      lambda p: jnp.asarray(rng.normal(size=p.shape) * 0.5, jnp.float32),
      params)
  return rng, x, lengths, model, params


# Odd batch: one row per sequence. Even batches: pairs 6+0, 4+2, 3+3 fit in
# 6 steps (packed rows); 6+2 does not (one row per sequence). The last two
# stop before the padded length: packed rows of 4+1 and 3+2 words, and one
# row per sequence up to 5 words.
BATCHES = [(6, 2, 4), (3, 6, 0, 2, 3, 4), (6, 2, 5, 6), (4, 1, 2, 3),
           (5, 2, 3)]


@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
@pytest.mark.parametrize('lengths', BATCHES)
def test_bigru_matches_flax_gru_cells(lengths, implementation):
  _, x, lengths, model, params = _random_bigru(0, lengths, implementation)
  ours = np.asarray(model.apply({'params': params}, x, lengths))
  reference = np.asarray(flax_reference(params, x, lengths, 7))
  np.testing.assert_allclose(ours, reference, atol=1e-5)
  for b, length in enumerate(np.asarray(lengths)):
    np.testing.assert_array_equal(ours[b, length:], 0.0)


@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
@pytest.mark.parametrize('lengths', BATCHES)
def test_bigru_gradient_matches_autodiff_of_flax_gru_cells(lengths,
                                                          implementation):
  rng, x, lengths, model, params = _random_bigru(2, lengths, implementation)
  # A weighting of valid outputs, so every output position has its own
  # cotangent.
  valid = np.arange(6)[None, :, None] < np.asarray(lengths)[:, None, None]
  weights = jnp.asarray(rng.normal(size=(len(lengths), 6, 7)) * valid,
                        jnp.float32)
  ours = jax.grad(lambda p, x: jnp.sum(
      weights * model.apply({'params': p}, x, lengths)), argnums=(0, 1))
  reference = jax.grad(lambda p, x: jnp.sum(
      weights * flax_reference(p, x, lengths, 7)), argnums=(0, 1))
  (ours_params, ours_x), (ref_params, ref_x) = ours(params, x), reference(
      params, x)
  for name in params:
    assert float(jnp.abs(ref_params[name]).max()) > 0.1, name
    np.testing.assert_allclose(ours_params[name], ref_params[name],
                               atol=1e-5, rtol=1e-4, err_msg=name)
  np.testing.assert_allclose(ours_x, ref_x, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
@pytest.mark.parametrize('lengths', BATCHES)
def test_bfloat16_products_stay_within_rounding_of_float32(lengths,
                                                           implementation):
  rng, x, lengths, model, params = _random_bigru(3, lengths, implementation)
  bf16 = bigru.BiGRU(7, matmul_dtype='bfloat16', implementation=implementation)
  weights = jnp.asarray(rng.normal(size=(len(lengths), 6, 7)), jnp.float32)

  def loss(model, p):
    return jnp.sum(weights * model.apply({'params': p}, x, lengths))
  out32 = np.asarray(model.apply({'params': params}, x, lengths))
  out16 = np.asarray(bf16.apply({'params': params}, x, lengths))
  difference = np.abs(out16 - out32).max()
  # bfloat16 keeps 8 bits of mantissa: products move by ~1e-2 relative
  # (outputs are O(1)), and they do move, so bfloat16 was really used.
  assert 1e-4 < difference < 5e-2, difference
  grads32 = jax.grad(loss, argnums=1)(model, params)
  grads16 = jax.grad(loss, argnums=1)(bf16, params)
  for name in params:
    assert grads16[name].dtype == jnp.float32, name
    scale = float(jnp.abs(grads32[name]).max())
    error = float(jnp.abs(grads16[name] - grads32[name]).max())
    assert error < 0.05 * scale, (name, error, scale)


@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
@pytest.mark.parametrize('first_length', [3, 2])  # One row each; packed.
def test_bigru_ignores_padding(first_length, implementation):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 5, 4)).astype(np.float32)
  lengths = jnp.array([first_length, 3 if first_length == 2 else 5])
  model = bigru.BiGRU(6, implementation=implementation)
  params = model.init(jax.random.PRNGKey(0), x, lengths)
  noisy = x.copy()
  noisy[0, first_length:] = rng.normal(size=(5 - first_length, 4)) * 100
  np.testing.assert_allclose(model.apply(params, x, lengths),
                             model.apply(params, noisy, lengths), atol=1e-6)


def test_auto_picks_packed_on_cpu_and_plain_elsewhere():
  assert bigru.implementation_for('cpu') == 'packed'
  for backend in ('gpu', 'tpu', 'cuda', 'rocm'):
    assert bigru.implementation_for(backend) == 'plain'
  with pytest.raises(ValueError, match='implementation'):
    bigru.BiGRU(4, implementation='fast').init(
        jax.random.PRNGKey(0), jnp.ones((2, 3, 2)), jnp.array([3, 1]))


def test_batch_groups_follow_the_traced_mesh():
  assert bigru.batch_groups() == 1
  mesh = sharding.data_mesh(jax.devices()[:1])
  seen = []
  jax.jit(sharding.on_mesh(lambda x: seen.append(bigru.batch_groups()) or x,
                           mesh))(jnp.ones(2))
  assert seen == [1]


def test_pair_rows_pairs_longest_with_shortest():
  first, second, fits = packed_gru.pair_rows(jnp.array([3, 6, 0, 2, 3, 4]), 6)
  lengths = np.array([3, 6, 0, 2, 3, 4])
  assert sorted(zip(lengths[first].tolist(), lengths[second].tolist())) == [
      (3, 3), (4, 2), (6, 0)]
  assert sorted(np.concatenate([first, second]).tolist()) == list(range(6))
  assert bool(fits)
  assert not bool(packed_gru.pair_rows(jnp.array([6, 2, 5, 6]), 6)[2])


# In one process of 8 forced CPU devices: both implementations on meshes of
# 1, 2, 4 and 8 devices against the reference, outputs and gradients. Batch
# 32 packs on every mesh, and is run again with lengths where one device's
# share cannot pair (the packed scan's fallback, same compiled program); 24
# packs on 1, 2 and 4 devices (two captions per row need an even share) but
# not on 8. Lengths 2-5 with a few of 11, padded to 16 (the report's).
_MESH_SCRIPT = textwrap.dedent('''
    import functools, sys
    import jax, jax.numpy as jnp, numpy as np
    sys.path.insert(0, 'tests')
    from test_bigru import flax_reference
    from hgr_jax import sharding
    from hgr_jax.models import bigru

    assert jax.device_count() == 8, jax.devices()
    rng = np.random.default_rng(0)

    def lengths_of(batch):
      lengths = rng.integers(2, 6, batch)
      lengths[rng.choice(batch, 3, replace=False)] = 11
      return lengths.astype(np.int32)

    unpaired = lengths_of(32)
    unpaired[:4] = 12  # The first share of 8 devices cannot pair.
    cases = {32: [lengths_of(32), unpaired], 24: [lengths_of(24)]}
    params = bigru.BiGRU(6).init(jax.random.PRNGKey(0), np.ones((2, 16, 5)),
                                 np.ones(2, np.int32))['params']
    params = jax.tree.map(lambda p: rng.normal(size=p.shape).astype(
        np.float32) * 0.5, params)

    def loss(module, params, x, lengths, weights):
      out = module.apply({'params': params}, x, lengths)
      return jnp.sum(weights * out), out

    @jax.jit
    def reference(params, x, lengths, weights):
      out, vjp = jax.vjp(lambda p, x: flax_reference(p, x, lengths, 6),
                         params, x)
      return out, vjp(weights)

    failures = []
    for batch, all_lengths in cases.items():
      x = rng.normal(size=(batch, 16, 5)).astype(np.float32)
      weights = rng.normal(size=(batch, 16, 6)).astype(np.float32)
      references = [reference(params, x, lengths, weights)
                    for lengths in all_lengths]
      for devices in (1, 2, 4, 8):
        mesh = sharding.data_mesh(jax.devices()[:devices])
        split = sharding.batch_sharded(mesh)
        for implementation in ('plain', 'packed'):
          module = bigru.BiGRU(6, implementation=implementation)
          fn = jax.jit(sharding.on_mesh(jax.value_and_grad(
              functools.partial(loss, module), argnums=(0, 1), has_aux=True),
              mesh), in_shardings=(sharding.replicated(mesh), split, split,
                                   split))
          for case, lengths in enumerate(all_lengths):
            ref_out, ref_grads = references[case]
            (_, out), grads = fn(params, x, lengths, weights)
            name = (f'batch {batch} ({case}), {devices} devices, '
                    f'{implementation}')
            try:
              np.testing.assert_allclose(out, ref_out, atol=2e-5)
              for key in params:
                np.testing.assert_allclose(grads[0][key], ref_grads[0][key],
                                           atol=1e-4, rtol=1e-4, err_msg=key)
              np.testing.assert_allclose(grads[1], ref_grads[1], atol=1e-4,
                                         rtol=1e-4)
            except AssertionError as e:
              failures.append(name + ': ' + str(e)[:300])
            else:
              print('OK', name)
    assert not failures, '\\n'.join(failures)
''')


def _run_8_devices(script):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS='--xla_force_host_platform_device_count=8')
  return subprocess.run([sys.executable, '-c', script], env=env,
                        capture_output=True, text=True, timeout=600)


def test_bigru_matches_reference_on_meshes_of_1_2_4_8_devices():
  result = _run_8_devices(_MESH_SCRIPT)
  assert result.returncode == 0, result.stderr[-4000:]
  assert result.stdout.count('OK') == 3 * 4 * 2, result.stdout


_SHARDED_SCRIPT = '''
import jax, jax.numpy as jnp, numpy as np
from hgr_jax import sharding
from hgr_jax.models import bigru
assert jax.device_count() == 8
mesh = sharding.data_mesh()
x = jnp.ones((64, 30, 16))
lengths = jnp.asarray(np.random.default_rng(0).integers(5, 15, 64))
model = bigru.BiGRU(32, implementation='packed')
params = model.init(jax.random.PRNGKey(0), x, lengths)
x, lengths = jax.device_put((x, lengths), sharding.batch_sharded(mesh))
loss = lambda p, x: jnp.sum(model.apply(p, x, lengths) ** 2)
print(jax.jit(sharding.on_mesh(jax.grad(loss), mesh)).lower(
    params, x).compile().as_text())
'''


def test_packed_scan_stays_sharded_over_devices():
  """On 8 devices a batch of 64 captions packs into 32 rows, 4 per device:
  the loop's inputs (a group of rows per device, 2 directions, 3 x 32
  gates, 30 steps, rows) must have 4 rows (8 unpacked) in the compiled
  program, never all 32."""
  result = _run_8_devices(_SHARDED_SCRIPT)
  assert result.returncode == 0, result.stderr[-3000:]
  rows = set(re.findall(r'f32\[1,2,96,30,(\d+)\]', result.stdout))
  assert rows == {'4', '8'}, rows
