"""Multi-host start: which launcher the environment names, and the checks
before jax.distributed starts."""

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
  assert distributed.detect_launcher({"OMPI_COMM_WORLD_SIZE": "4"}) == "mpi"
  assert distributed.detect_launcher({"LATENT_JAX_MULTIHOST": "1"}) == "forced"
  with pytest.raises(ValueError, match="JAX_NUM_PROCESSES"):
    distributed.initialize({"JAX_COORDINATOR_ADDRESS": "host:1234"})
  assert distributed.initialize({}) is False
