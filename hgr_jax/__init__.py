"""hgr_jax: fine-grained video-text retrieval (HGR, VSE++) in JAX/Flax."""

import ctypes
import os

# XLA:CPU in jaxlib 0.10 deadlocked (every thread idle) on the HGR train step
# under the concurrency-optimised scheduler, and once inside a YNNPACK library
# fusion in the GRU's while loop after 700 steps (with YNNPACK's default fusion
# types). Both stay off here, before JAX creates its CPU backend, except
# YNNPACK's single dot products: they are XLA:CPU's only fast bfloat16 products
# (2-3x its float32 ones; the bfloat16 BiGRU needs them), float32 steps take
# the same time with them within 3%, and 1,880-step training runs with them
# (bfloat16 and float32) did not hang (docs/training_speed.md). Flags the
# user already set in XLA_FLAGS are left alone.
_CPU_FLAGS = {
    '--xla_cpu_enable_concurrency_optimized_scheduler': 'false',
    '--xla_cpu_experimental_ynn_fusion_type': ','.join(
        f'-LIBRARY_FUSION_TYPE_{kind}' for kind in (
            'DOT', 'ELTWISE', 'REDUCE', 'INDIVIDUAL_CONVOLUTION')),
}
_user_flags = os.environ.get('XLA_FLAGS', '')
os.environ['XLA_FLAGS'] = ' '.join([_user_flags] + [
    f'{name}={value}' for name, value in _CPU_FLAGS.items()
    if name not in _user_flags]).strip()


def _keep_freed_memory():
  """Makes glibc keep freed memory for reuse instead of returning it.

  XLA:CPU allocates every temporary buffer afresh per call. glibc serves
  large allocations with mmap (and per-thread arenas shrink their heaps),
  so every train step faulted in its temporaries page by page again: about
  95,000 page faults (380 MB) and 10-15% of a VSE++ step at batch 128
  (docs/training_speed.md). One arena, no mmap and no trimming keep the
  pages mapped: the process holds its peak memory. Only arenas created
  after this call are affected, so it runs before JAX starts its threads.
  """
  try:
    libc = ctypes.CDLL('libc.so.6')
  except OSError:  # Not glibc: nothing to tune.
    return
  for option, value in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0),
                        (_M_TRIM_THRESHOLD, 2**31 - 1)):
    libc.mallopt(option, value)


# glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
if os.environ.get('HGR_KEEP_FREED_MEMORY', '1') != '0':
  _keep_freed_memory()
