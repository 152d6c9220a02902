"""What the hardware offers, and the XLA:CPU process settings.

Importing hgr_jax changes nothing in the process. `configure_xla_cpu` is an
explicit call, made by the command line, the benchmarks and the notebooks
before JAX starts its backends, that sets XLA:CPU flags and glibc's
allocator for training on CPU.
"""

import ctypes
import functools
import importlib.metadata
import importlib.util
import os

import jax

# XLA:CPU in jaxlib 0.10 deadlocked (every thread idle) on the HGR train step
# under the concurrency-optimised scheduler, and once inside a YNNPACK library
# fusion in the GRU's while loop after 700 steps (with YNNPACK's default fusion
# types). Both stay off, except YNNPACK's single dot products: they are
# XLA:CPU's only fast bfloat16 products, float32 steps take the same time
# with them within 3%, and 1,880-step training runs with them (bfloat16 and
# float32) did not hang (docs/training_speed.md).
XLA_CPU_FLAGS = {
    '--xla_cpu_enable_concurrency_optimized_scheduler': 'false',
    '--xla_cpu_experimental_ynn_fusion_type': ','.join(
        f'-LIBRARY_FUSION_TYPE_{kind}' for kind in (
            'DOT', 'ELTWISE', 'REDUCE', 'INDIVIDUAL_CONVOLUTION')),
}
# (major, minor) versions of jaxlib whose XLA:CPU knows these flags: XLA
# aborts the process on a flag it does not know, so other versions get none.
FLAGS_TESTED_ON_JAXLIB = ((0, 10),)

# glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8

# x86 (AVX-512 BF16, AMX) and Arm (FEAT_BF16) flags of /proc/cpuinfo for
# native bfloat16 dot products.
_CPU_BFLOAT16_FLAGS = ('avx512_bf16', 'amx_bf16', 'bf16')


def _jaxlib_version():
  import jaxlib  # pylint: disable=g-import-not-at-top
  return tuple(int(part) for part in jaxlib.__version__.split('.')[:2])


def xla_cpu_flags(jaxlib_version=None):
  """The flags `configure_xla_cpu` adds for this jaxlib ({} when untested)."""
  version = jaxlib_version or _jaxlib_version()
  return dict(XLA_CPU_FLAGS) if version in FLAGS_TESTED_ON_JAXLIB else {}


def keep_freed_memory():
  """Makes glibc keep freed memory for reuse instead of returning it.

  XLA:CPU allocates every temporary buffer afresh per call. glibc serves
  large allocations with mmap (and per-thread arenas shrink their heaps),
  so every train step faulted in its temporaries page by page again: about
  95,000 page faults (380 MB) and 10-15% of a VSE++ step at batch 128
  (docs/training_speed.md). One arena, no mmap and no trimming keep the
  pages mapped: the process holds its peak memory. Only arenas created
  after this call are affected, so it runs before JAX starts its threads.

  Returns:
    Whether the allocator was changed (False where libc is not glibc).
  """
  try:
    libc = ctypes.CDLL('libc.so.6')
  except OSError:
    return False
  for option, value in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0),
                        (_M_TRIM_THRESHOLD, 2**31 - 1)):
    libc.mallopt(option, value)
  return True


def accelerator_plugins():
  """Names of the installed JAX accelerator plugins (CUDA, ROCm) and
  libtpu: without any, JAX runs on the CPU."""
  names = [entry.name for entry in
           importlib.metadata.entry_points(group='jax_plugins')]
  if importlib.util.find_spec('libtpu') is not None:
    names.append('libtpu')
  return names


def configure_xla_cpu(keep_memory=None):
  """Sets the XLA:CPU flags and allocator this project trains with on CPU.

  Call before the first JAX computation (flags are read when the backend
  starts). Flags the user already set in XLA_FLAGS are left alone; on a
  jaxlib outside FLAGS_TESTED_ON_JAXLIB none are added. Harmless on other
  backends: the flags only concern XLA:CPU.

  Args:
    keep_memory: apply `keep_freed_memory`; None: unless
      HGR_KEEP_FREED_MEMORY=0 or an accelerator plugin is installed (the
      host then mostly feeds the input pipeline, whose threads would share
      one arena).

  Returns:
    A line saying what was set, for the log.
  """
  flags = xla_cpu_flags()
  user_flags = os.environ.get('XLA_FLAGS', '')
  added = [f'{name}={value}' for name, value in flags.items()
           if name not in user_flags]
  if added:
    os.environ['XLA_FLAGS'] = ' '.join([user_flags] + added).strip()
  if keep_memory is None:
    keep_memory = (os.environ.get('HGR_KEEP_FREED_MEMORY', '1') != '0' and
                   not accelerator_plugins())
  kept = keep_memory and keep_freed_memory()
  return (f'XLA:CPU flags added: {added or "none"}'
          f'{"" if flags else " (jaxlib not in the tested versions)"}; '
          f'allocator keeps freed memory: {kept}.')


@functools.lru_cache(maxsize=None)
def _cpu_flags():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith(('flags', 'Features')):
          return frozenset(line.split(':', 1)[1].split())
  except OSError:
    pass
  return frozenset()


def native_bfloat16(device=None):
  """(bool, reason): whether `device` multiplies bfloat16 natively.

  TPUs do; NVIDIA GPUs from compute capability 8.0 (Ampere) have bfloat16
  tensor cores; CPUs that report AVX-512 BF16, AMX or Arm's BF16. Elsewhere
  bfloat16 products are emulated and slower than float32 (an AVX2-only
  EPYC: HGR's step 0.90 s in bfloat16 against 0.69 s in float32).
  """
  device = device or jax.devices()[0]
  platform = device.platform
  if platform == 'tpu':
    return True, 'TPU'
  if platform == 'gpu':
    capability = getattr(device, 'compute_capability', None)
    kind = getattr(device, 'device_kind', 'GPU')
    if capability is None:
      return False, f'{kind}: compute capability unknown'
    native = float(capability) >= 8.0
    return native, (f'{kind}, compute capability {capability} '
                    f'({"has" if native else "has no"} bfloat16 tensor cores)')
  if platform == 'cpu':
    found = sorted(_cpu_flags() & set(_CPU_BFLOAT16_FLAGS))
    if found:
      return True, f'CPU with {", ".join(found)}'
    return False, 'CPU without AVX-512 BF16, AMX or Arm BF16'
  return False, f'{platform}: not known to have bfloat16 products'


def matmul_dtype(setting):
  """The products' operand type of a `gru_matmul_dtype` setting: 'auto'
  picks bfloat16 where `native_bfloat16`, float32 elsewhere."""
  if setting != 'auto':
    return setting
  return 'bfloat16' if native_bfloat16()[0] else 'float32'


def describe_matmul_dtype(setting):
  """A log line: the dtype a setting resolves to, and why."""
  why = (f'auto: {native_bfloat16()[1]}' if setting == 'auto' else
         'set in the config')
  return f'GRU products in {matmul_dtype(setting)} ({why}).'
