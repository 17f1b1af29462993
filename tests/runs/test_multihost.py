"""A run as a job of 2 processes x 1 CPU device on localhost equals the same
run in 1 process with 2 devices: one model (killed in process 1 mid-run,
then resumed by a restart of both) and an ensemble whose member axis spans
the two processes. Process 0 alone writes; a one-process evaluate reads the
job's checkpoint; processes started with different configs are refused.

One 2-process job (A: the ensemble, a config mismatch, the model until the
kill), its restart (B) and the 1-process reference (beside A) serve every
test of this file.
"""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from latent_jax.runs import vae as vae_run
from latent_jax.train import distributed
from latent_jax.train.metrics_writer import read_records

# Each process (argv: task, root): the digits smoke runs of the job.
_WORKER = textwrap.dedent("""
    import json, os, signal, sys
    from experiments.configs import vae_digits
    from latent_jax.runs import vae as vae_run
    from latent_jax.train import distributed
    from latent_jax.train.checkpointing import Checkpointer

    task, root = sys.argv[1:3]
    KILL_AT = 16  # process 1 dies as the last (step-16) checkpoint starts

    def config(**fields):
      config = vae_digits.get_config("smoke")
      config.unlock()
      config.eval.figures, config.eval.iwae_samples = "loss_curves", 0
      # 16 steps (8 per epoch), checkpoints at 8 and 16
      for path, value in fields.items():
        section, field = path.split(".")
        config[section][field] = value
      return config

    ensemble = config(**{"ensemble.kl_weights": (0.5, 2.0),
                         "ensemble.member_devices": 2, "train.epochs": 1})
    if task in ("job_a", "reference"):
      suffix = "" if task == "job_a" else "_ref"
      distributed.initialize()
      try:  # a mismatch: every process raises, none hangs
        distributed.check_same_config({"train": {"lr": os.getpid()},
                                       "seed": 0})
      except ValueError as error:
        with open(f"{root}/mismatch_{os.environ['JAX_PROCESS_ID']}", "w") as f:
          f.write(str(error))
      vae_run.train_and_evaluate(ensemble, f"{root}/ensemble{suffix}")
    if task == "job_a" and os.environ["JAX_PROCESS_ID"] == "1":
      save = Checkpointer.save
      def save_or_die(self, step, *args):
        if step >= KILL_AT:
          os.kill(os.getpid(), signal.SIGKILL)
        save(self, step, *args)
      Checkpointer.save = save_or_die
    suffix = "_ref" if task == "reference" else ""
    vae_run.train_and_evaluate(config(), f"{root}/model{suffix}")
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


def _start(repo_root, task, root, env):
  # One compilation cache: job B reuses job A's programs.
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "JAX_COMPILATION_CACHE_DIR": os.path.join(root, "jax_cache"),
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
         "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1", **env}
  return subprocess.Popen([sys.executable, "-c", _WORKER, task, root],
                          cwd=repo_root, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)


def _job(repo_root, task, root):
  return [_start(repo_root, task, root, {**env, "XLA_FLAGS": ""})
          for env in _process_envs(repo_root, _free_port())]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, repo_root):
  """Runs job A (process 1 killed), the reference beside it, then job B;
  returns (root, job A's return codes, job B's, seconds of job B)."""
  root = str(tmp_path_factory.mktemp("multihost"))
  reference = _start(repo_root, "reference", root, {
      "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
  first = _job(repo_root, "job_a", root)
  first[1].wait(timeout=300)
  try:  # process 0 waits in a collective for its dead peer: end it, as a
    first[0].wait(timeout=10)  # scheduler ends a failed job step
  except subprocess.TimeoutExpired:
    first[0].send_signal(signal.SIGKILL)
    first[0].wait()
  assert reference.wait(timeout=300) == 0, reference.stderr.read()[-3000:]
  started = time.perf_counter()
  second = _job(repo_root, "job_b", root)
  codes = [p.wait(timeout=300) for p in second]
  assert codes == [0, 0], [p.stderr.read()[-3000:] for p in second]
  return (root, [p.returncode for p in first], codes,
          time.perf_counter() - started)


def _load(path):
  with open(path) as file:
    return json.load(file)


def _close(a, b):
  return (a.keys() == b.keys()
          and all(np.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a
                  if not isinstance(a[k], list)))


def test_killed_job_resumes_to_the_one_process_result(jobs):
  root, first, second, _ = jobs
  assert first[1] == -signal.SIGKILL and second == [0, 0]
  model, reference = f"{root}/model", f"{root}/model_ref"
  assert _close(_load(f"{model}/eval.json"), _load(f"{reference}/eval.json"))
  # The job's checkpoint, restored by one process of one device.
  job, ref = (vae_run.restore_ensemble(w) for w in (model, reference))
  assert job.step == ref.step == 16
  for a, b in zip(jax.tree.leaves(job.params), jax.tree.leaves(ref.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


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
  for name in ("ensemble", "model"):
    job, ref = f"{root}/{name}", f"{root}/{name}_ref"
    assert _files(job) == _files(ref)  # no lock left, no extra file
    records = read_records(job)
    keys = [(r["step"], r["split"], r.get("member")) for r in records]
    assert len(keys) == len(set(keys))  # one writer: no record twice
    assert keys == [(r["step"], r["split"], r.get("member"))
                    for r in read_records(ref)]
  # One TensorBoard writer per job (the model's: job A, then job B).
  assert len(os.listdir(f"{root}/ensemble/tensorboard")) == 1
  assert len(os.listdir(f"{root}/model/tensorboard")) == 2


def test_one_process_evaluates_the_jobs_checkpoint(jobs, copy_run):
  workdir = copy_run(f"{jobs[0]}/ensemble")
  summary = vae_run.evaluate_workdir(workdir)
  written = _load(f"{jobs[0]}/ensemble/eval.json")
  for a, b in zip(summary["members"], written["members"]):
    assert _close(a, b)


def test_processes_with_different_configs_are_refused(jobs):
  root = jobs[0]
  with open(f"{root}/mismatch_0") as file:
    chief = file.read()
  with open(f"{root}/mismatch_1") as file:
    other = file.read()
  assert "different configs" in chief and "process 1: train.lr" in chief
  assert "seed" not in chief
  assert other.startswith("Process 0 refused the job")
