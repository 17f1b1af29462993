"""Multi-host runs: start `jax.distributed` when launched as several processes.

A job started by SLURM (`srun`, one process per host), on a Cloud TPU pod
slice (the same command on every worker; `TPU_WORKER_HOSTNAMES` lists them,
or `LATENT_JAX_MULTIHOST=1` as launch/tpu_vm.sh sets), by Open MPI, or with
the `JAX_COORDINATOR_ADDRESS` / `JAX_NUM_PROCESSES` / `JAX_PROCESS_ID`
variables set (launch/local.sh's `NUM_PROCESSES` mode), runs one JAX
process per host; `initialize()` detects that from the environment and
calls `jax.distributed.initialize()` before any computation, after which
`jax.devices()` lists every host's devices and one mesh spans them. A plain
single-process run changes nothing. Multi-process CPU runs use Gloo
collectives (set before the backend starts; GPU/TPU use their own).

Rules every process follows (reason: the processes run one SPMD program,
so any divergence is a hang):
- bad `JAX_*` variables fail before JAX starts, naming the variable; a
  coordinator not joined within `INIT_TIMEOUT_S` seconds fails naming it;
- `check_same_config`: every process must run the same config; otherwise
  every process raises, process 0 naming the differing keys;
- only process 0 writes metrics, config.json, eval.json and figures; every
  process takes part in training, the periodic test evaluation and orbax
  checkpoint saves/restores; host-local work only process 0 writes out
  (the final evaluation) runs there alone (`chief_only`);
- `any_process`: a stop (SIGTERM) seen by any process stops all of them at
  the same step.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any, Callable, Mapping, NamedTuple

import jax
import numpy as np
from absl import logging

EXPLICIT_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES",
                 "JAX_PROCESS_ID")
INIT_TIMEOUT_S = 45  # joining the coordinator; the bound is 60 s


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
  if any(env.get(name) for name in EXPLICIT_VARS):
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


class ExplicitJob(NamedTuple):
  """The job the `JAX_*` variables describe."""
  coordinator: str   # host:port of process 0's coordination service
  num_processes: int
  process_id: int    # 0 .. num_processes - 1


def explicit_job(env: Mapping[str, str]) -> ExplicitJob:
  """The three `JAX_*` variables, checked; ValueError names the bad one."""
  missing = [name for name in EXPLICIT_VARS if not env.get(name)]
  if missing:
    raise ValueError(
        f"{missing[0]} is not set (a multi-process job needs all of "
        f"{', '.join(EXPLICIT_VARS)}): set it, or unset the others for a "
        "one-process run.")
  values = {}
  for name in EXPLICIT_VARS[1:]:
    try:
      values[name] = int(env[name])
    except ValueError:
      raise ValueError(f"{name}={env[name]!r} is not an integer.") from None
  num, pid = values["JAX_NUM_PROCESSES"], values["JAX_PROCESS_ID"]
  if num < 1:
    raise ValueError(f"JAX_NUM_PROCESSES={num} must be at least 1.")
  if not 0 <= pid < num:
    raise ValueError(f"JAX_PROCESS_ID={pid} is out of range: with "
                     f"JAX_NUM_PROCESSES={num} use 0..{num - 1}, one per "
                     "process.")
  address = env["JAX_COORDINATOR_ADDRESS"]
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit():
    raise ValueError(f"JAX_COORDINATOR_ADDRESS={address!r} is not "
                     "host:port (e.g. 10.0.0.1:23456, process 0's host).")
  return ExplicitJob(address, num, pid)


def _wait_for_coordinator(job: ExplicitJob, timeout_s: float) -> None:
  """Retries a TCP connection to the coordinator (process 0 may start
  later); ValueError naming JAX_COORDINATOR_ADDRESS if none succeeds."""
  host, _, port = job.coordinator.rpartition(":")
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
      return
    except OSError as error:
      if time.monotonic() >= deadline:
        raise ValueError(
            f"JAX_COORDINATOR_ADDRESS={job.coordinator}: process "
            f"{job.process_id} reached no coordinator there within "
            f"{timeout_s:.0f} s ({error.strerror or error}); start process "
            "0 (JAX_PROCESS_ID=0) on that host and port.") from None
      time.sleep(0.5)


def _initialize_within(timeout_s: float, describe: str, **kwargs) -> None:
  """`jax.distributed.initialize(**kwargs)`, or ValueError(`describe`) if
  it has not returned within `timeout_s` (JAX itself would abort the
  process, later, with a C++ stack trace)."""
  done, errors = threading.Event(), []

  def start():
    try:
      jax.distributed.initialize(initialization_timeout=int(timeout_s) + 30,
                                 **kwargs)
    except BaseException as error:  # pylint: disable=broad-except
      errors.append(error)
    done.set()

  threading.Thread(target=start, daemon=True).start()
  if not done.wait(timeout_s):
    raise ValueError(describe)
  if errors:
    raise errors[0]


def initialize(env: Mapping[str, str] | None = None,
               timeout_s: float = INIT_TIMEOUT_S) -> bool:
  """Starts `jax.distributed` if launched multi-process; True if it did.

  Raises ValueError naming the variable if the `JAX_*` variables are
  inconsistent or the job does not assemble within `timeout_s` seconds.
  """
  env = os.environ if env is None else env
  launcher = detect_launcher(env)
  if launcher is None or jax.distributed.is_initialized():
    return False
  job = explicit_job(env) if launcher == "explicit" else None
  if job is not None and job.num_processes == 1:
    return False
  # Gloo for the CPU backend's collectives; GPU/TPU backends ignore it.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if job is None:
    _initialize_within(timeout_s, f"the {launcher} job did not assemble "
                       f"within {timeout_s:.0f} s: check that every process "
                       "was started.")  # reads the cluster's own variables
  else:
    if job.process_id:
      _wait_for_coordinator(job, timeout_s)
    _initialize_within(
        timeout_s,
        f"JAX_NUM_PROCESSES={job.num_processes}: not every process joined "
        f"the coordinator at JAX_COORDINATOR_ADDRESS={job.coordinator} "
        f"within {timeout_s:.0f} s; start all {job.num_processes}, each "
        "with its own JAX_PROCESS_ID.",
        coordinator_address=job.coordinator,
        num_processes=job.num_processes, process_id=job.process_id)
  logging.info("jax.distributed (%s): process %d of %d, %d devices in all.",
               launcher, jax.process_index(), jax.process_count(),
               jax.device_count())
  return True


def is_chief() -> bool:
  """Whether this process writes files (process 0)."""
  return jax.process_index() == 0


def fetch(tree: Any) -> Any:
  """Global device arrays -> host NumPy, gathering shards held by other
  hosts (every process gets the whole value)."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils  # only needed multi-host
  return multihost_utils.process_allgather(tree, tiled=True)


def _gather_host(value: np.ndarray) -> np.ndarray:
  """[P, ...]: this host-local array from every process, by process id."""
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(value, tiled=False))


def any_process(flag: bool) -> bool:
  """Whether `flag` is set on any process (a collective: call it from
  every process at the same point)."""
  if jax.process_count() == 1:
    return bool(flag)
  return bool(_gather_host(np.asarray([flag], np.int32)).any())


def chief_only(compute: Callable[[], Any]) -> Any:
  """`compute()` run by process 0 alone; its JSON-able result on every
  process (a collective). For host-local work only process 0 writes out,
  e.g. the final evaluation. One process: `compute()`."""
  if jax.process_count() == 1:
    return compute()
  return gather_records(compute() if is_chief() else None)[0]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  if not isinstance(tree, dict):
    return {prefix: tree}
  flat = {}
  for key, value in tree.items():
    flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
  return flat


def _plain(value: Any) -> Any:
  """NumPy scalars and arrays, tuples -> JSON values."""
  return value.tolist() if hasattr(value, "tolist") else list(value)


def gather_records(record: Mapping[str, Any]) -> list[dict[str, Any]]:
  """Every process's JSON-able `record`, by process id (a collective)."""
  text = json.dumps(record, sort_keys=True, default=_plain).encode()
  if jax.process_count() == 1:
    return [json.loads(text)]
  lengths = _gather_host(np.asarray([len(text)], np.int64)).ravel()
  padded = np.zeros(int(lengths.max()), np.uint8)
  padded[:len(text)] = np.frombuffer(text, np.uint8)
  rows = _gather_host(padded).reshape(len(lengths), -1)
  return [json.loads(row[:n].tobytes()) for row, n in zip(rows, lengths)]


def config_differences(records: list[Mapping[str, Any]]
                       ) -> dict[int, list[str]]:
  """{process id: dotted keys where its record differs from process 0's}."""
  reference = _flatten(dict(records[0]))
  differences = {}
  for index, record in enumerate(records[1:], start=1):
    flat = _flatten(dict(record))
    keys = sorted(key for key in set(reference) | set(flat)
                  if reference.get(key) != flat.get(key))
    if keys:
      differences[index] = keys
  return differences


def check_same_config(record: Mapping[str, Any]) -> None:
  """Every process must have been started with the same config (a
  collective; a no-op on one process).

  Raises ValueError on every process if any differs: process 0's message
  names each other process and its differing keys.
  """
  if jax.process_count() == 1:
    return
  differences = config_differences(gather_records(record))
  if not differences:
    return
  described = "; ".join(f"process {index}: {', '.join(keys)}"
                        for index, keys in differences.items())
  if is_chief():
    raise ValueError(f"The processes of this job were started with different"
                     f" configs (keys differing from process 0's: "
                     f"{described}): start every process with the same "
                     "command.")
  raise ValueError(f"Process 0 refused the job: its processes were started "
                   f"with different configs ({described}).")
