"""The device mesh: data parallel over `data`, ensemble members over `member`.

Every run uses a `jax.sharding.Mesh` with axes ("member", "data"); on one
device both have size 1 and nothing changes. Each step's batch is sharded over
`data` (every device computes the gradient of its slice and XLA all-reduces
them); stacked member parameters and optimiser state are sharded over
`member` on their leading axis (replicated when it has size 1). The training
images are replicated to every device: each device gathers its own slice of
each batch on device, so no data moves from the host per step.

With several processes the mesh holds other hosts' devices, which
`jax.device_put` cannot reach: `put` builds every global array from the
host copy each process holds, supplying only its own devices' shards.

The automatic shape prefers data parallelism and puts the devices that the
batch cannot use (its size must divide evenly) on the member axis.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("member", "data")


class MeshShape(NamedTuple):
  """Sizes of the mesh axes."""
  member: int
  data: int


def mesh_shape(num_devices: int, batch_size: int, num_members: int,
               member_devices: int = 0) -> MeshShape:
  """The (member, data) axis sizes for `num_devices` devices.

  Args:
    member_devices: `ensemble.member_devices`; 0 picks the shape with the
      largest data axis that divides `batch_size`, whose member axis divides
      `num_members`.
  """
  if member_devices:
    if (member_devices < 0 or num_devices % member_devices
        or num_members % member_devices):
      raise ValueError(
          f"Invalid config value ensemble.member_devices={member_devices}: "
          f"must divide both the device count ({num_devices}) and the "
          f"number of members ({num_members}); 0 picks a shape.")
    data = num_devices // member_devices
    if batch_size % data:
      raise ValueError(
          f"Invalid config value train.batch_size={batch_size}: the data "
          f"axis has {data} devices; use a multiple of {data}.")
    return MeshShape(member_devices, data)
  for member in range(1, num_devices + 1):
    data = num_devices // member
    if (num_devices % member == 0 and batch_size % data == 0
        and num_members % member == 0):
      return MeshShape(member, data)
  raise ValueError(
      f"Invalid config value train.batch_size={batch_size}: no mesh of "
      f"{num_devices} devices fits it and {num_members} member(s). Use a "
      f"batch size divisible by {num_devices}, or set "
      "ensemble.member_devices.")


def make_mesh(batch_size: int, num_members: int, member_devices: int = 0,
              devices=None) -> Mesh:
  """A ("member", "data") mesh over `devices` (default: all devices)."""
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(len(devices), batch_size, num_members, member_devices)
  # Auto axes: XLA propagates shardings from the inputs and the batch
  # constraint (explicit axes would need every op's sharding spelled out).
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * 2,
                       devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """[B, ...] arrays split over the data axis."""
  return NamedSharding(mesh, PartitionSpec("data"))


def member_sharding(mesh: Mesh) -> NamedSharding:
  """[M, ...] arrays split over the member axis."""
  return NamedSharding(mesh, PartitionSpec("member"))


def _is_key(array) -> bool:
  return jax.dtypes.issubdtype(getattr(array, "dtype", None),
                               jax.dtypes.prng_key)


def put(array, sharding: NamedSharding) -> jax.Array:
  """Host or device array -> global array with `sharding`.

  On one process (every device addressable) a `device_put`. Across
  processes a host array is built from a callback, so each process supplies
  only the shards its own devices hold (every process holds the same
  data); an array already global is resharded collectively. PRNG key
  arrays keep their key type.
  """
  if isinstance(array, jax.Array) and (not array.is_fully_addressable
                                       or sharding.is_fully_addressable):
    return jax.device_put(array, sharding)
  if _is_key(array):
    return jax.random.wrap_key_data(put(jax.random.key_data(array), sharding),
                                    impl=jax.random.key_impl(array))
  host = np.asarray(array)
  return jax.make_array_from_callback(host.shape, sharding,
                                      lambda index: host[index])


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Every leaf of `tree` replicated on every device of `mesh`."""
  everywhere = replicated(mesh)
  return jax.tree.map(lambda leaf: put(leaf, everywhere), tree)


def shard_members(tree: Any, mesh: Mesh) -> Any:
  """Stacked member leaves [M, ...] over `member`; scalars replicated."""
  by_member, everywhere = member_sharding(mesh), replicated(mesh)
  return jax.tree.map(
      lambda leaf: put(leaf, by_member if np.ndim(leaf) else everywhere),
      tree)
