"""Importing hgr_jax makes glibc keep freed memory in one arena (so XLA:CPU's
per-call temporaries are not faulted in afresh every step), and
HGR_KEEP_FREED_MEMORY=0 leaves glibc's defaults."""

import os
import subprocess
import sys

# Runs multi-threaded XLA:CPU work, then counts glibc's arenas in
# malloc_info's report: by default every busy thread gets its own arena,
# each trimming and unmapping the memory its thread frees.
_SCRIPT = '''
import ctypes, re, tempfile
import hgr_jax
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
print(len(re.findall('<heap nr=', open(path).read())))
'''


def _arenas(keep_freed_memory):
  env = dict(os.environ, HGR_KEEP_FREED_MEMORY=keep_freed_memory,
             JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-c', _SCRIPT], env=env,
                          check=True, capture_output=True, text=True)
  return int(result.stdout.split()[-1])


def test_freed_memory_stays_in_one_malloc_arena():
  assert _arenas('1') == 1
  assert _arenas('0') > 1
