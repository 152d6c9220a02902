"""hgr_jax: fine-grained video-text retrieval (HGR, VSE++) in JAX/Flax."""

import os

# XLA:CPU (jaxlib 0.10) can deadlock, every thread idle, running the HGR train
# step under its concurrency-optimised scheduler; the plain scheduler is fine.
# The flag must be set before JAX creates its CPU backend, hence here.
_CPU_SCHEDULER_FLAG = '--xla_cpu_enable_concurrency_optimized_scheduler'
if _CPU_SCHEDULER_FLAG not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = ' '.join(
      filter(None, [os.environ.get('XLA_FLAGS'), _CPU_SCHEDULER_FLAG + '=false']))
