"""hgr_jax: fine-grained video-text retrieval (HGR, VSE++) in JAX/Flax."""

import os

# XLA:CPU in jaxlib 0.10 deadlocks (every thread idle) on the HGR train step in
# two ways: under the concurrency-optimised scheduler, and inside YNNPACK
# library fusions running in a while loop (the GRU scan), the latter after
# hundreds of steps. Both are turned off here, before JAX creates its CPU
# backend; flags the user already set in XLA_FLAGS are left alone.
_CPU_FLAGS = {
    '--xla_cpu_enable_concurrency_optimized_scheduler': 'false',
    '--xla_cpu_experimental_ynn_fusion_type': ','.join(
        f'-LIBRARY_FUSION_TYPE_{kind}' for kind in (
            'DOT', 'ELTWISE', 'REDUCE', 'INDIVIDUAL_DOT',
            'INDIVIDUAL_CONVOLUTION')),
}
_user_flags = os.environ.get('XLA_FLAGS', '')
os.environ['XLA_FLAGS'] = ' '.join([_user_flags] + [
    f'{name}={value}' for name, value in _CPU_FLAGS.items()
    if name not in _user_flags]).strip()
