"""`python -m hgr_jax.search index|query ...` (see `hgr_jax.search`)."""

from absl import app

from hgr_jax.search import cli

if __name__ == '__main__':
  cli.define_flags()
  app.run(cli.main)
