"""A run as a job of 2 processes x 1 CPU device on localhost equals the same
run in 1 process with 2 devices, through every interruption a cluster
deals out: SIGTERM to both processes, SIGTERM to one (each: a checkpoint and
exit code 143 on every process; rerun in the same processes), then a
SIGKILL of process 1 (a new job resumes it). The interrupted run is a
sweep's latent-dim sub-run (`experiments.sweep --latent_dim_index`, as a
SLURM array task runs it), data-parallel over the processes; an ensemble's
member axis spans them too. Process 0 alone writes; a one-process evaluate
reads the job's checkpoint; processes started with different configs, and
UMAP runs, are refused on every process.

Job A (the ensemble, the refusals, the sub-run until the kill), job B (the
sub-run resumed to its end) and the 1-process reference beside them serve
every test of this file.
"""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from experiments.configs import vae_digits
from latent_jax.runs import sweep as sweep_run
from latent_jax.runs import vae as vae_run
from latent_jax.train import distributed
from latent_jax.train.metrics_writer import read_records

DIMS = (3, 2)  # the sub-run trained: index 1, latent 2 (the digits smoke's)
ARCH = "mlp500"  # compiles in about half the time of the conv preset
SWEEP_ARGS = ("--config=experiments/configs/vae_digits.py:smoke",
              f"--config.model.arch={ARCH}",
              "--config.eval.figures=loss_curves",
              f"--config.sweep.latent_dims={DIMS}", "--latent_dim_index=1")

# Each process (argv: task, root, arch, the sweep's flags). The sub-run: 16
# steps in chunks of 4, checkpoints every 8 and at each stop.
_WORKER = textwrap.dedent("""
    import os, signal, sys
    from experiments import sweep as sweep_cli
    from experiments.cli import parse_flags
    from experiments.configs import umap_digits, vae_digits
    from latent_jax.runs import umap as umap_run, vae as vae_run
    from latent_jax.train import distributed
    from latent_jax.train.checkpointing import Checkpointer

    task, root, arch, sweep_args = *sys.argv[1:4], sys.argv[4:]
    distributed.initialize()
    process = os.environ.get("JAX_PROCESS_ID", "0")
    suffix = "_ref" if task == "reference" else ""
    parse_flags(["sweep", f"--workdir={root}/sweep{suffix}", *sweep_args])

    def note(name, text):
      with open(f"{root}/{name}_{process}", "w") as file:
        file.write(str(text))

    def sweep_task(sigterm_at=None, to=("0", "1")):
      # experiments.sweep's main; SIGTERM to the processes `to` as the
      # sigterm_at-th chunk of this attempt starts. Returns its exit code.
      make_chunk, calls = vae_run.make_chunk, [0]
      class Chunk:
        def __init__(self, chunk):
          self.chunk = chunk
        def __getattr__(self, name):
          return getattr(self.chunk, name)
        def __call__(self, *args):
          calls[0] += 1
          if calls[0] == sigterm_at and process in to:
            os.kill(os.getpid(), signal.SIGTERM)
          return self.chunk(*args)
      vae_run.make_chunk = lambda *a, **k: Chunk(make_chunk(*a, **k))
      try:
        sweep_cli.main(["sweep"])
        return 0
      except SystemExit as stop:
        return stop.code
      finally:
        vae_run.make_chunk = make_chunk

    if task in ("job_a", "reference"):
      try:  # a mismatch: every process raises, none hangs
        distributed.check_same_config({"train": {"lr": os.getpid()},
                                       "seed": 0})
      except ValueError as error:
        note("mismatch", error)
      config = vae_digits.get_config("smoke")
      config.unlock()
      config.model.arch, config.eval.figures = arch, "loss_curves"
      config.eval.iwae_samples = 0
      config.ensemble.kl_weights, config.ensemble.member_devices = (0.5, 2.0), 2
      config.train.epochs = 1
      vae_run.train_and_evaluate(config, f"{root}/ensemble{suffix}")
    if task == "reference":
      sweep_cli.sweep.write_summary = lambda *args: None  # not compared
      sys.exit(sweep_task())
    if task == "job_a":
      try:
        umap_run.train_and_evaluate(umap_digits.get_config("smoke"),
                                    f"{root}/umap")
      except ValueError as error:
        note("umap", error)
      # Each SIGTERM'd attempt resumed in this process, as a rerun would.
      note("sigterm_to_both", sweep_task(sigterm_at=1))  # stops at step 4
      note("sigterm_to_one", sweep_task(sigterm_at=2, to=("1",)))  # at 12
      note("checkpoints", sorted(
          os.listdir(f"{root}/sweep/latent_2/checkpoints"), key=int))
      if process == "1":
        save = Checkpointer.save
        def save_or_die(self, step, *args):
          if step >= 16:  # dies as the last checkpoint starts
            os.kill(os.getpid(), signal.SIGKILL)
          save(self, step, *args)
        Checkpointer.save = save_or_die
    sys.exit(sweep_task())  # job A: killed; job B: resumes to the end
""")


def _free_port():
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _process_envs(repo_root, port):
  """The JAX_* variables of each process, as `NUM_PROCESSES=2
  launch/local.sh` sets them."""
  lines = subprocess.run(
      ["bash", "launch/local.sh"], cwd=repo_root, capture_output=True,
      text=True, timeout=30, check=True,
      env={**os.environ, "DRY_RUN": "1", "NUM_PROCESSES": "2",
           "PORT": str(port)}).stdout.splitlines()[:2]
  return [dict(word.split("=", 1) for word in shlex.split(line)
               if word.split("=")[0] in distributed.EXPLICIT_VARS)
          for line in lines]


class _Process:
  """A worker process; its log in <root>/log_<name>."""

  def __init__(self, repo_root, task, root, name, env):
    self.log = os.path.join(root, f"log_{name}")
    # The session's compilation cache (tests/conftest.py; JAX writes it from
    # process 0 of a job only): jobs B and C reuse job A's programs.
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **env}
    with open(self.log, "w") as log:
      self.popen = subprocess.Popen(
          [sys.executable, "-c", _WORKER, task, root, ARCH, *SWEEP_ARGS],
          cwd=repo_root, env=env, stdout=log, stderr=subprocess.STDOUT)

  def wait(self, timeout=300):
    return self.popen.wait(timeout=timeout)

  def tail(self):
    with open(self.log) as file:
      return file.read()[-3000:]


def _job(repo_root, task, root):
  return [_Process(repo_root, task, root, f"{task}_{i}",
                   {**env, "XLA_FLAGS": ""})
          for i, env in enumerate(_process_envs(repo_root, _free_port()))]


def _wait_all(processes):
  codes = [p.wait() for p in processes]
  return codes, "\n".join(p.tail() for p in processes)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, repo_root):
  """Runs job A (process 1 killed), then job B, beside the reference;
  returns (root, {job: its processes' return codes})."""
  root = str(tmp_path_factory.mktemp("multihost"))
  reference = _Process(repo_root, "reference", root, "reference", {
      "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
  job_a = _job(repo_root, "job_a", root)
  killed = job_a[1].wait()
  try:  # process 0 waits in a collective for its dead peer: end it, as a
    job_a[0].wait(timeout=5)  # scheduler ends a failed job step
  except subprocess.TimeoutExpired:
    job_a[0].popen.send_signal(signal.SIGKILL)
    job_a[0].wait()
  assert killed == -signal.SIGKILL, job_a[1].tail()
  codes, logs = _wait_all(_job(repo_root, "job_b", root))
  assert codes == [0, 0], logs
  assert reference.wait() == 0, reference.tail()
  return root, {"a": [job_a[0].popen.returncode, killed], "b": codes}


def _load(path):
  with open(path) as file:
    return json.load(file)


def _read(root, name):
  return [open(f"{root}/{name}_{i}").read() for i in (0, 1)]


def _close(a, b, rtol=1e-5, atol=1e-6):
  return (a.keys() == b.keys()
          and all(np.allclose(a[k], b[k], rtol=rtol, atol=atol) for k in a
                  if not isinstance(a[k], list)))


def test_sigterm_to_both_or_one_process_checkpoints_and_exits_143(jobs):
  root = jobs[0]
  # experiments.sweep's exit code on each process, SIGTERM to both, then
  # to process 1 alone.
  assert _read(root, "sigterm_to_both") == ["143", "143"]
  assert _read(root, "sigterm_to_one") == ["143", "143"]
  # Each stop saved its own step (4 and 12 are off the 8-step cadence).
  assert _read(root, "checkpoints")[0] == str(["4", "8", "12"])


def test_interrupted_sub_run_resumes_to_the_one_process_result(jobs):
  root, codes = jobs
  assert codes["a"][1] == -signal.SIGKILL and codes["b"] == [0, 0]
  job, ref = f"{root}/sweep/latent_2", f"{root}/sweep_ref/latent_2"
  assert _close(_load(f"{job}/eval.json"), _load(f"{ref}/eval.json"))
  # The job's checkpoint, restored by one process of one device.
  job, ref = (vae_run.restore_ensemble(w) for w in (job, ref))
  assert job.step == ref.step == 16
  for a, b in zip(jax.tree.leaves(job.params), jax.tree.leaves(ref.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # The sweep summary of the job's sub-run is the reference's.
  rows = [sweep_run.summary_rows(f"{root}/{name}", DIMS)
          for name in ("sweep", "sweep_ref")]
  assert len(rows[0]) == 1 and rows[0][0]["latent_dim"] == 2
  for a, b in zip(*rows):
    a.pop("train_seconds"), b.pop("train_seconds")
    assert _close(a, b)


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory, smoke_config):
  """The sub-run's config trained on this process's one device: workdir."""
  workdir = str(tmp_path_factory.mktemp("one_device") / "latent_2")
  vae_run.train_and_evaluate(smoke_config(vae_digits, **{
      "model.arch": ARCH, "eval.figures": "loss_curves",
      "sweep.latent_dims": DIMS}), workdir)
  return workdir


def test_two_devices_equal_one_device(jobs, one_device_run):
  """The 1-process 2-device reference (data parallel) against one device;
  its checkpoint restores on one device."""
  ref = f"{jobs[0]}/sweep_ref/latent_2"
  assert _close(_load(f"{ref}/eval.json"), _load(f"{one_device_run}/eval.json"),
                rtol=1e-4, atol=1e-5)
  params = [vae_run.restore_ensemble(w).params for w in (ref, one_device_run)]
  for a, b in zip(*map(jax.tree.leaves, params)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_ensemble_over_the_processes_equals_its_one_process_run(jobs):
  root = jobs[0]
  job, ref = (_load(f"{root}/{name}/eval.json")
              for name in ("ensemble", "ensemble_ref"))
  assert [m["kl_weight"] for m in job["members"]] == [0.5, 2.0]
  for a, b in zip(job["members"], ref["members"]):
    assert _close(a, b)


def _files(workdir):
  names = []
  for folder, _, files in os.walk(workdir):
    relative = os.path.relpath(folder, workdir)
    if relative.split(os.sep)[0] not in ("checkpoints", "tensorboard"):
      names += [os.path.join(relative, name) for name in files]
  return sorted(names)


def test_process_zero_alone_writes_each_file_once(jobs):
  root = jobs[0]
  for name, ref_name in (("ensemble", "ensemble_ref"),
                         ("sweep/latent_2", "sweep_ref/latent_2")):
    job, ref = f"{root}/{name}", f"{root}/{ref_name}"
    assert _files(job) == _files(ref)  # no lock left, no extra file
    records = read_records(job)
    keys = [(r["step"], r["split"], r.get("member")) for r in records]
    assert len(keys) == len(set(keys))  # one writer: no record twice
    assert keys == [(r["step"], r["split"], r.get("member"))
                    for r in read_records(ref)]
  # One TensorBoard writer per attempt: the ensemble's one; the sub-run's
  # three in job A, one in job B.
  assert len(os.listdir(f"{root}/ensemble/tensorboard")) == 1
  assert len(os.listdir(f"{root}/sweep/latent_2/tensorboard")) == 4
  assert sorted(os.listdir(f"{root}/sweep")) == ["latent_2"]  # no summary


def test_one_process_evaluates_the_jobs_checkpoint(jobs, copy_run):
  workdir = copy_run(f"{jobs[0]}/ensemble")
  summary = vae_run.evaluate_workdir(workdir)
  written = _load(f"{jobs[0]}/ensemble/eval.json")
  for a, b in zip(summary["members"], written["members"]):
    assert _close(a, b)


def test_processes_with_different_configs_are_refused(jobs):
  chief, other = _read(jobs[0], "mismatch")
  assert "different configs" in chief and "process 1: train.lr" in chief
  assert "seed" not in chief
  assert other.startswith("Process 0 refused the job")


def test_umap_runs_are_refused_on_every_process(jobs):
  root = jobs[0]
  for message in _read(root, "umap"):
    assert message.startswith("UMAP runs are single-process, but this job "
                              "has 2 processes"), message
    assert "\n" not in message
  assert not os.path.exists(f"{root}/umap")  # refused before any file
