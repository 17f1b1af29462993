"""Multi-host start: which launcher the environment names, the checks of
the JAX_* variables before jax.distributed starts (each error names its
variable), and the config comparison that refuses mismatched processes."""

import socket
import time

import jax
import pytest

from latent_jax.train import distributed


def test_launcher_detection_from_the_environment():
  assert distributed.detect_launcher({}) is None
  assert distributed.detect_launcher(
      {"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) is None
  assert distributed.detect_launcher(
      {"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}) == "slurm"
  assert distributed.detect_launcher(
      {"TPU_WORKER_HOSTNAMES": "10.0.0.2"}) is None
  assert distributed.detect_launcher(
      {"TPU_WORKER_HOSTNAMES": "10.0.0.2,10.0.0.3"}) == "tpu"
  assert distributed.detect_launcher(
      {"JAX_COORDINATOR_ADDRESS": "host:1234"}) == "explicit"
  assert distributed.detect_launcher({"JAX_PROCESS_ID": "1"}) == "explicit"
  assert distributed.detect_launcher({"OMPI_COMM_WORLD_SIZE": "4"}) == "mpi"
  assert distributed.detect_launcher({"LATENT_JAX_MULTIHOST"
                                      : "1"}) == "forced"
  assert distributed.initialize({}) is False


_JOB = {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1234", "JAX_NUM_PROCESSES": "2",
        "JAX_PROCESS_ID": "1"}


@pytest.mark.parametrize("changes, named", [
    ({"JAX_NUM_PROCESSES": None}, "JAX_NUM_PROCESSES is not set"),
    ({"JAX_COORDINATOR_ADDRESS": None}, "JAX_COORDINATOR_ADDRESS is not set"),
    ({"JAX_PROCESS_ID": "2"}, "JAX_PROCESS_ID=2 is out of range"),
    ({"JAX_PROCESS_ID": "-1"}, "JAX_PROCESS_ID=-1 is out of range"),
    ({"JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES='two' is not an "
                                   "integer"),
    ({"JAX_NUM_PROCESSES": "0"}, "JAX_NUM_PROCESSES=0 must be at least 1"),
    ({"JAX_COORDINATOR_ADDRESS": "localhost"}, "JAX_COORDINATOR_ADDRESS="
                                               "'localhost' is not host:port"),
])
def test_inconsistent_variables_fail_before_jax_starts_naming_one(changes,
                                                                  named):
  env = {k: v for k, v in {**_JOB, **changes}.items() if v is not None}
  with pytest.raises(ValueError) as info:
    distributed.initialize(env)
  assert str(info.value).startswith(named)
  assert not jax.distributed.is_initialized()


def test_explicit_job_reads_the_three_variables():
  assert distributed.explicit_job(_JOB) == ("127.0.0.1:1234", 2, 1)
  # One process: nothing to start.
  assert distributed.initialize({**_JOB, "JAX_NUM_PROCESSES": "1",
                                 "JAX_PROCESS_ID": "0"}) is False


def test_an_unreachable_coordinator_fails_naming_it():
  with socket.socket() as sock:  # a port nothing listens on
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
  job = distributed.explicit_job({**_JOB,
                                  "JAX_COORDINATOR_ADDRESS":
                                  f"127.0.0.1:{port}"})
  started = time.monotonic()
  with pytest.raises(ValueError, match=rf"^JAX_COORDINATOR_ADDRESS=127.0.0.1:"
                     rf"{port}: process 1 reached no coordinator"):
    distributed._wait_for_coordinator(job, timeout_s=0.5)
  assert time.monotonic() - started < 5


def test_a_job_that_does_not_assemble_fails_within_the_timeout(monkeypatch):
  """Process 0 waits for peers that never come: a one-line ValueError at
  the timeout instead of JAX's abort later."""
  monkeypatch.setattr(jax.distributed, "initialize",
                      lambda **kwargs: time.sleep(30))
  started = time.monotonic()
  with pytest.raises(ValueError, match="^JAX_NUM_PROCESSES=2: not every"):
    distributed._initialize_within(0.3, "JAX_NUM_PROCESSES=2: not every "
                                   "process joined")
  assert time.monotonic() - started < 5


def test_config_differences_name_each_process_and_key():
  base = {"seed": 0, "train": {"learning_rate": 1e-3, "epochs": 2}}
  same = {"train": {"epochs": 2, "learning_rate": 1e-3}, "seed": 0}
  other = {"seed": 0, "train": {"learning_rate": 2e-3, "epochs": 2},
           "extra": 1}
  assert distributed.config_differences([base, same]) == {}
  assert distributed.config_differences([base, same, other]) == {
      2: ["extra", "train.learning_rate"]}
  # One process: the check is a no-op and the record goes through JSON.
  distributed.check_same_config(base)
  assert distributed.gather_records(base) == [base]
  assert distributed.any_process(True) and not distributed.any_process(False)
