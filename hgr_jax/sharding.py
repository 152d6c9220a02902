"""The device mesh: batches split over a 'data' axis, parameters replicated."""

import functools

import jax
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = 'data'


def data_mesh(devices=None):
  """A 1-D mesh named 'data' over `devices` (default: every device, all hosts)."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), (DATA_AXIS,),
                       axis_types=(AxisType.Auto,), devices=devices)


def replicated(mesh):
  return NamedSharding(mesh, P())


def batch_sharded(mesh):
  """Splits the leading (batch) axis over 'data'."""
  return NamedSharding(mesh, P(DATA_AXIS))


def on_mesh(fn, mesh):
  """`fn` traced under `mesh`'s abstract mesh, so that the layers it calls
  see how the batch is split (`jax.sharding.get_abstract_mesh`); jit it
  with this mesh's shardings."""
  @functools.wraps(fn)
  def traced(*args, **kwargs):
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
      return fn(*args, **kwargs)
  return traced


def global_batch(local_batch, mesh):
  """Assembles each host's numpy batch into one global array per leaf."""
  sharding = batch_sharded(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x),
      local_batch)
