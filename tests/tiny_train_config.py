"""The tests' tiny config for training in other processes: one epoch with
step checkpoints (see tests/train_runner.py)."""

from tests import conftest


def get_config():
  # VSE++: the loop, not the model, is under test, and it compiles fastest.
  config = conftest.tiny_config('vsepp')
  config.update(dict(num_epochs=1, checkpoint_every_steps=10,
                     log_every_steps=5, keep_checkpoints=10,
                     binary_selection=False))
  # Several processes pad every batch to max_words (train.word_buckets);
  # the one-process reference must too, or its dropout masks (drawn per
  # shape) differ.
  config.word_buckets = ()
  return config
