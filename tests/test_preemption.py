"""The real command survives SIGTERM (checkpoint, exit 143) and SIGKILL."""

import os
import signal
import subprocess
import sys
import time

from latent_jax.train.checkpointing import Checkpointer
from latent_jax.train.metrics_writer import read_records

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 60
TOTAL_STEPS = EPOCHS * (256 // 32)


def _start(workdir):
  return subprocess.Popen(
      [sys.executable, "-m", "experiments.train",
       "--config=experiments/configs/vae_digits.py:smoke",
       f"--config.train.epochs={EPOCHS}", f"--workdir={workdir}"],
      cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint_past(workdir, step, process, timeout=120):
  deadline = time.monotonic() + timeout
  directory = os.path.join(workdir, "checkpoints")
  while time.monotonic() < deadline:
    assert process.poll() is None, process.stderr.read()
    if os.path.isdir(directory):
      steps = [int(name) for name in os.listdir(directory) if name.isdigit()]
      if steps and max(steps) > step:
        return max(steps)
    time.sleep(0.05)
  raise TimeoutError(f"no checkpoint past step {step} in {timeout}s")


def test_sigterm_checkpoints_and_sigkill_resumes(tmp_path):
  workdir = str(tmp_path)
  process = _start(workdir)
  _wait_for_checkpoint_past(workdir, 0, process)
  process.send_signal(signal.SIGTERM)
  assert process.wait(timeout=60) == 143
  stopped_at = Checkpointer(workdir).latest_step()
  assert 0 < stopped_at < TOTAL_STEPS

  process = _start(workdir)  # resumes, then is killed without warning
  _wait_for_checkpoint_past(workdir, stopped_at + 8, process)
  process.send_signal(signal.SIGKILL)
  process.wait(timeout=60)

  process = _start(workdir)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr
  assert "Resumed from the checkpoint" in stderr
  assert Checkpointer(workdir).latest_step() == TOTAL_STEPS
  steps = [r["step"] for r in read_records(workdir) if r["split"] == "train"]
  assert steps == list(range(4, TOTAL_STEPS + 1, 4))  # none repeated/skipped
  assert os.path.exists(os.path.join(workdir, "eval.json"))
