"""launch/ scripts: their dry runs print the commands a cluster would run."""

import os
import shlex
import signal
import subprocess
import time

import pytest

from latent_jax.train import distributed


@pytest.fixture
def dry_run(repo_root):
  """`dry_run(script, *args, **env)`: the lines launch/<script> prints with
  DRY_RUN=1."""

  def run(script, *args, **env):
    result = subprocess.run(
        ["bash", os.path.join(repo_root, "launch", script), *args],
        env={**os.environ, "DRY_RUN": "1", **env}, cwd=repo_root,
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()

  return run


def test_slurm_task_runs_its_latent_dim_with_one_process_per_node(dry_run,
                                                                 repo_root):
  lines = dry_run("slurm.sbatch", "--config.train.epochs=3",
                  SLURM_ARRAY_TASK_ID="2", SLURM_JOB_NUM_NODES="2",
                  SLURM_JOB_NODELIST="gpu07,gpu08",
                  SLURM_SUBMIT_DIR="/shared/latent_jax",
                  WORKDIR="/shared/runs/ablation")
  assert lines[:2] == [
      "cd /shared/latent_jax",
      "export JAX_COORDINATOR_ADDRESS=gpu07:23456 JAX_NUM_PROCESSES=2"]
  srun = shlex.split(lines[2])
  assert srun[:3] == ["srun", "--nodes=2", "--ntasks-per-node=1"]
  wrapper, python = srun[3:7], srun[7:]
  assert python == [
      "python", "-m", "experiments.sweep",
      "--config=experiments/configs/ablation.py",
      "--workdir=/shared/runs/ablation", "--latent_dim_index=2",
      "--config.train.epochs=3"]
  # Each task's wrapper sets its JAX_PROCESS_ID from SLURM_PROCID.
  shown = subprocess.run([*wrapper, "printenv", "JAX_PROCESS_ID"],
                         env={**os.environ, "SLURM_PROCID": "1"},
                         capture_output=True, text=True, timeout=30)
  assert shown.stdout.strip() == "1"
  assert shlex.split(dry_run("slurm.sbatch")[-1])[3:6] == [
      "python", "-m", "experiments.sweep"]  # one node: no JAX_* variables
  with open(os.path.join(repo_root, "launch", "slurm.sbatch")) as file:
    header = file.read().split("set -euo pipefail")[0]
  assert "#SBATCH --ntasks-per-node=1" in header
  assert "#SBATCH --gpus-per-node=1" in header


def test_slurm_command_is_a_valid_sweep_invocation(tmp_path, dry_run,
                                                   run_python):
  # The printed python command, as the task would run it, with --dry_run.
  srun = dry_run("slurm.sbatch", SLURM_ARRAY_TASK_ID="1",
                 CONFIG="experiments/configs/ablation.py:smoke",
                 WORKDIR=str(tmp_path))[1]
  python = shlex.split(srun)[3:]
  assert python[:3] == ["python", "-m", "experiments.sweep"]
  result = run_python(*python[1:], "--dry_run")
  assert result.returncode == 0, result.stderr[-2000:]
  train = [l for l in result.stdout.splitlines()
           if "experiments.train" in l]
  assert train == [
      "python -m experiments.train "
      "--config=experiments/configs/ablation.py:smoke "
      f"--config.model.latent_dim=3 --workdir={tmp_path}/latent_3"]


def test_tpu_vm_creates_copies_and_runs_on_every_worker(dry_run):
  lines = dry_run("tpu_vm.sh", TPU_NAME="abl", ZONE="us-central2-b",
                  ACCELERATOR_TYPE="v4-32", PROJECT="proj",
                  COMMAND="python -m experiments.sweep "
                          "--config=experiments/configs/ablation.py "
                          "--workdir=gs://bucket/ablation")
  commands = [l for l in lines if not l.startswith("#")]
  assert [shlex.split(c)[:5] for c in commands] == [
      ["gcloud", "compute", "tpus", "tpu-vm", "create"],
      ["git", "archive", "--format=tar.gz", "-o",
       "/tmp/abl_latent_jax.tar.gz"],
      ["gcloud", "compute", "tpus", "tpu-vm", "scp"],
      ["gcloud", "compute", "tpus", "tpu-vm", "ssh"]]
  create, _, scp, ssh = map(shlex.split, commands)
  assert create[5:] == ["abl", "--zone=us-central2-b", "--project=proj",
                        "--accelerator-type=v4-32",
                        "--version=tpu-ubuntu2204-base"]
  assert "--worker=all" in scp and "--worker=all" in ssh
  remote = next(a for a in ssh if a.startswith("--command="))
  assert remote.endswith(
      "pip install -q -c constraints.txt -e '.[tpu]' && "
      "LATENT_JAX_MULTIHOST=1 python -m experiments.sweep "
      "--config=experiments/configs/ablation.py "
      "--workdir=gs://bucket/ablation")
  without_setup = dry_run("tpu_vm.sh", SETUP="0")[-1]
  assert "pip install" not in without_setup


def test_local_runs_a_config_or_a_sweep(dry_run):
  assert dry_run("local.sh", "--config.train.epochs=5") == [
      "python -m experiments.train "
      "--config=experiments/configs/vae_heatmaps.py "
      "--workdir=runs/vae_heatmaps --config.train.epochs=5",
      "python -m experiments.evaluate --workdir=runs/vae_heatmaps"]
  assert dry_run("local.sh", SWEEP="1",
                 CONFIG="experiments/configs/ablation.py:smoke") == [
      "python -m experiments.sweep "
      "--config=experiments/configs/ablation.py:smoke "
      "--workdir=runs/ablation"]


def test_local_starts_a_job_of_processes_with_the_jax_variables(dry_run):
  lines = dry_run("local.sh", "--config.train.epochs=1", NUM_PROCESSES="2",
                  PORT="23999")
  train = ("python -m experiments.train "
           "--config=experiments/configs/vae_heatmaps.py "
           "--workdir=runs/vae_heatmaps --config.train.epochs=1")
  assert lines == [
      f"JAX_COORDINATOR_ADDRESS=127.0.0.1:23999 JAX_NUM_PROCESSES=2 "
      f"JAX_PROCESS_ID={i} {train}" for i in (0, 1)] + [
          "python -m experiments.evaluate --workdir=runs/vae_heatmaps"]
  names = [word.split("=")[0] for word in lines[0].split()[:3]]
  assert tuple(names) == distributed.EXPLICIT_VARS


def test_local_refuses_a_bad_process_count(repo_root):
  result = subprocess.run(["bash", "launch/local.sh"], cwd=repo_root,
                          env={**os.environ, "NUM_PROCESSES": "0"},
                          capture_output=True, text=True, timeout=30)
  assert result.returncode == 2
  assert result.stderr.strip() == ("error: NUM_PROCESSES=0 must be a "
                                   "positive integer.")


def test_local_and_slurm_give_each_process_the_same_jax_variables(dry_run):
  """Each process's JAX_* variables, as local.sh and slurm.sbatch set them,
  are the job `distributed` reads (explicit_job); TPU VMs use JAX's own
  detection (launch/tpu_vm.sh sets LATENT_JAX_MULTIHOST=1)."""
  local = [dict(w.split("=", 1) for w in line.split()[:3])
           for line in dry_run("local.sh", NUM_PROCESSES="2",
                               PORT="23999")[:2]]
  _, export, srun = dry_run("slurm.sbatch", SLURM_JOB_NUM_NODES="2",
                            SLURM_JOB_NODELIST="gpu07,gpu08")
  wrapper = shlex.split(srun)[3:7]
  shared = dict(w.split("=", 1) for w in export.split()[1:])
  slurm = []
  for task in ("0", "1"):
    shown = subprocess.run(
        [*wrapper, "env"], env={**os.environ, **shared, "SLURM_PROCID": task},
        capture_output=True, text=True, timeout=30).stdout.splitlines()
    slurm.append({k: v for k, _, v in (l.partition("=") for l in shown)
                  if k in distributed.EXPLICIT_VARS})
  for envs, coordinator in ((local, "127.0.0.1:23999"),
                            (slurm, "gpu07:23456")):
    assert [set(env) for env in envs] == [set(distributed.EXPLICIT_VARS)] * 2
    assert [distributed.explicit_job(env) for env in envs] == [
        distributed.ExplicitJob(coordinator, 2, i) for i in (0, 1)]
  ssh = dry_run("tpu_vm.sh", ACCELERATOR_TYPE="v4-32")[-1]
  assert "LATENT_JAX_MULTIHOST=1 python -m experiments" in ssh
  assert distributed.detect_launcher({"LATENT_JAX_MULTIHOST": "1"}) == "forced"


def test_local_forwards_sigterm_to_every_process(repo_root, tmp_path):
  # A stand-in `python` that waits for SIGTERM, records it, exits 143.
  fake = tmp_path / "bin" / "python"
  fake.parent.mkdir()
  fake.write_text(
      "#!/usr/bin/env bash\n"
      f"trap 'touch {tmp_path}/term_$JAX_PROCESS_ID; exit 143' TERM\n"
      f"touch {tmp_path}/up_$JAX_PROCESS_ID\n"
      "while true; do sleep 0.05; done\n")
  fake.chmod(0o755)
  env = dict(os.environ, PATH=f"{fake.parent}:{os.environ['PATH']}",
             NUM_PROCESSES="2", WORKDIR=str(tmp_path / "run"))
  script = subprocess.Popen(["bash", "launch/local.sh"], cwd=repo_root,
                            env=env)
  for _ in range(200):
    if all((tmp_path / f"up_{i}").exists() for i in (0, 1)):
      break
    time.sleep(0.05)
  script.send_signal(signal.SIGTERM)
  assert script.wait(timeout=30) == 143
  assert all((tmp_path / f"term_{i}").exists() for i in (0, 1))
