"""hgr_jax: fine-grained video-text retrieval (HGR, HANet, HCMI, VSE++) in
JAX/Flax.

Importing it changes nothing in the process; the command line sets its
XLA:CPU options with `hgr_jax.platform.configure_xla_cpu`.
"""
