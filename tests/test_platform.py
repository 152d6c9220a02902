"""Importing hgr_jax leaves the process alone; `configure_xla_cpu` sets the
XLA:CPU flags (on tested jaxlibs only) and glibc's allocator; `auto` picks
bfloat16 only where the hardware multiplies it natively."""

import os
import subprocess
import sys
from unittest import mock

import pytest

from hgr_jax import platform

# Runs multi-threaded XLA:CPU work, then prints XLA_FLAGS and the number of
# glibc's arenas in malloc_info's report: by default every busy thread gets
# its own arena, each trimming and unmapping the memory its thread frees.
_SCRIPT = '''
import ctypes, os, re, sys, tempfile
import hgr_jax, hgr_jax.train, hgr_jax.evaluate, hgr_jax.main  # Everything.
if sys.argv[1] == 'configure':
  from hgr_jax import platform
  platform.configure_xla_cpu()
import jax
import jax.numpy as jnp
step = jax.jit(lambda x: jnp.sum(jnp.tanh(x @ x) @ x + jnp.sin(x)))
x = jnp.ones((2048, 2048))
for _ in range(5):
  step(x).block_until_ready()
libc = ctypes.CDLL('libc.so.6')
libc.fopen.restype = ctypes.c_void_p
path = tempfile.mktemp()
stream = libc.fopen(path.encode(), b'w')
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(repr(os.environ.get('XLA_FLAGS')))
print(len(re.findall('<heap nr=', open(path).read())))
'''


def _run(mode, **env):
  # Without the flags the suite's own process set (conftest).
  env = dict({k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'},
             JAX_PLATFORMS='cpu', **env)
  result = subprocess.run([sys.executable, '-c', _SCRIPT, mode], env=env,
                          check=True, capture_output=True, text=True)
  flags, arenas = result.stdout.split('\n')[-3:-1]
  return flags, int(arenas)


def test_import_leaves_flags_and_allocator_alone():
  flags, arenas = _run('import')
  assert flags == 'None'
  assert arenas > 1
  flags, _ = _run('import', XLA_FLAGS='--xla_cpu_use_thunk_runtime=true')
  assert flags == repr('--xla_cpu_use_thunk_runtime=true')


def test_configure_sets_flags_and_one_arena():
  flags, arenas = _run('configure')
  if not platform.xla_cpu_flags():
    pytest.skip('this jaxlib is not among FLAGS_TESTED_ON_JAXLIB')
  for name in platform.XLA_CPU_FLAGS:
    assert name in flags
  assert arenas == 1
  _, arenas = _run('configure', HGR_KEEP_FREED_MEMORY='0')
  assert arenas > 1


def test_flags_only_for_tested_jaxlib_and_never_over_the_users(monkeypatch):
  assert platform.xla_cpu_flags((0, 10)) == platform.XLA_CPU_FLAGS
  assert platform.xla_cpu_flags((0, 99)) == {}
  assert platform.xla_cpu_flags((1, 0)) == {}
  user = '--xla_cpu_enable_concurrency_optimized_scheduler=true'
  monkeypatch.setenv('XLA_FLAGS', user)
  with mock.patch.object(platform, '_jaxlib_version', return_value=(0, 10)):
    platform.configure_xla_cpu(keep_memory=False)
  flags = os.environ['XLA_FLAGS']
  assert flags.count('concurrency_optimized_scheduler') == 1 and user in flags
  assert '--xla_cpu_experimental_ynn_fusion_type' in flags
  monkeypatch.setenv('XLA_FLAGS', user)
  with mock.patch.object(platform, '_jaxlib_version', return_value=(0, 99)):
    platform.configure_xla_cpu(keep_memory=False)
  assert os.environ['XLA_FLAGS'] == user


class _Device:

  def __init__(self, platform_name, **attributes):
    self.platform = platform_name
    self.__dict__.update(attributes)


@pytest.mark.parametrize('device, native', [
    (_Device('tpu'), True),
    (_Device('gpu', compute_capability='9.0', device_kind='H100'), True),
    (_Device('gpu', compute_capability='8.0', device_kind='A100'), True),
    (_Device('gpu', compute_capability='7.0', device_kind='V100'), False),
    (_Device('gpu'), False),
    (_Device('metal'), False),
])
def test_native_bfloat16_by_device(device, native):
  assert platform.native_bfloat16(device)[0] is native


@pytest.mark.parametrize('flags, native', [
    ({'avx2', 'avx512f', 'avx512_bf16'}, True),
    ({'avx2', 'amx_bf16', 'amx_tile'}, True),
    ({'fp', 'asimd', 'bf16'}, True),
    ({'avx2', 'fma', 'avx512f'}, False),
])
def test_native_bfloat16_on_cpus(flags, native):
  with mock.patch.object(platform, '_cpu_flags', return_value=flags):
    assert platform.native_bfloat16(_Device('cpu'))[0] is native
    with mock.patch.object(platform, 'native_bfloat16',
                           return_value=(native, 'mocked')):
      assert platform.matmul_dtype('auto') == (
          'bfloat16' if native else 'float32')
  assert platform.matmul_dtype('float32') == 'float32'
  assert platform.matmul_dtype('bfloat16') == 'bfloat16'
