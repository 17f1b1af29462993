"""Multi-host runs: start `jax.distributed` when launched as several processes.

A job started by SLURM (`srun`, one process per host), on a Cloud TPU pod
slice (the same command on every worker; `TPU_WORKER_HOSTNAMES` lists them,
or `LATENT_JAX_MULTIHOST=1` as launch/tpu_vm.sh sets), by Open MPI, or with
the `JAX_COORDINATOR_ADDRESS` / `JAX_NUM_PROCESSES` / `JAX_PROCESS_ID`
variables set, runs one JAX process per host; `initialize()` detects that
from the environment and calls `jax.distributed.initialize()` before any
computation, after which `jax.devices()` lists every host's devices and one
mesh spans them. A plain single-process run changes nothing.

Only process 0 writes metrics, config.json, eval.json and figures; every
process takes part in computation and in orbax checkpoint saves.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
from absl import logging


def _count(env: Mapping[str, str], name: str) -> int:
  try:
    return int(env.get(name, "1") or 1)
  except ValueError:
    return 1


def detect_launcher(env: Mapping[str, str] | None = None) -> str | None:
  """Which multi-process launcher started us ("explicit", "slurm", "tpu",
  "mpi", or "forced" by LATENT_JAX_MULTIHOST=1, for JAX's own cluster
  detection, e.g. on Cloud TPU pod slices), or None for one process."""
  env = os.environ if env is None else env
  if env.get("JAX_COORDINATOR_ADDRESS"):
    return "explicit"
  if "SLURM_PROCID" in env and max(_count(env, "SLURM_NTASKS"),
                                   _count(env, "SLURM_STEP_NUM_TASKS")) > 1:
    return "slurm"
  if "," in env.get("TPU_WORKER_HOSTNAMES", ""):
    return "tpu"
  if _count(env, "OMPI_COMM_WORLD_SIZE") > 1:
    return "mpi"
  if env.get("LATENT_JAX_MULTIHOST") == "1":  # launch/tpu_vm.sh sets it
    return "forced"
  return None


def initialize(env: Mapping[str, str] | None = None) -> bool:
  """Starts `jax.distributed` if launched multi-process; True if it did."""
  env = os.environ if env is None else env
  launcher = detect_launcher(env)
  if launcher is None or jax.distributed.is_initialized():
    return False
  if launcher == "explicit":
    missing = [name for name in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
               if name not in env]
    if missing:
      raise ValueError(
          f"JAX_COORDINATOR_ADDRESS is set but {missing} are not: set all "
          "three (or none, to let SLURM / Cloud TPU / Open MPI be detected).")
    jax.distributed.initialize(
        coordinator_address=env["JAX_COORDINATOR_ADDRESS"],
        num_processes=int(env["JAX_NUM_PROCESSES"]),
        process_id=int(env["JAX_PROCESS_ID"]))
  else:
    jax.distributed.initialize()  # reads the cluster's own environment
  logging.info("jax.distributed (%s): process %d of %d, %d devices in all.",
               launcher, jax.process_index(), jax.process_count(),
               jax.device_count())
  return True


def is_chief() -> bool:
  """Whether this process writes files (process 0)."""
  return jax.process_index() == 0


def fetch(tree: Any) -> Any:
  """Device arrays -> host NumPy, gathering shards held by other hosts."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils  # only needed multi-host
  return multihost_utils.process_allgather(tree, tiled=True)
