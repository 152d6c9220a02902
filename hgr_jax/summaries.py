"""Reads back the scalars a training run wrote to its workdir's TensorBoard
event files (clu's metric writer stores them as tensor summaries)."""

import numpy as np
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf


def read_scalars(workdir):
  """Every scalar series of `workdir`'s event files.

  Args:
    workdir: a training workdir (`train.train_and_evaluate`).

  Returns:
    {tag: (steps (n,) int64, values (n,) float64)}, sorted by step, e.g.
    'train_loss' (every `config.log_every_steps`) and 'val_rsum' (after
    every epoch). Non-scalar summaries (hyper-parameters) are left out.

  Raises:
    FileNotFoundError: `workdir` holds no event file.
  """
  if not tf.io.gfile.glob(f'{workdir}/events.out.tfevents.*'):
    raise FileNotFoundError(f'{workdir} holds no TensorBoard event file: '
                            'pass the workdir of a training run.')
  # size_guidance 0 keeps every event instead of a reservoir sample.
  accumulator = event_accumulator.EventAccumulator(
      workdir, size_guidance={event_accumulator.TENSORS: 0})
  accumulator.Reload()
  series = {}
  for tag in accumulator.Tags()[event_accumulator.TENSORS]:
    events = accumulator.Tensors(tag)
    values = [tf.make_ndarray(event.tensor_proto) for event in events]
    if any(value.ndim != 0 or value.dtype.kind not in 'fiu'
           for value in values):
      continue
    order = np.argsort([event.step for event in events], kind='stable')
    series[tag] = (np.array([events[i].step for i in order], np.int64),
                   np.array([float(values[i]) for i in order]))
  return series
