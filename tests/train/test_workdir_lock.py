"""One process per workdir: the lock refuses a second holder, takes over a
dead one's file on this host, and a refused run leaves nothing behind."""

import json
import os
import socket
import subprocess
import sys

import pytest

from latent_jax.train import workdir_lock


def _dead_pid():
  process = subprocess.Popen([sys.executable, "-c", "pass"])
  process.wait()
  return process.pid


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
  lock = workdir_lock.WorkdirLock(str(tmp_path))
  holder = json.load(open(tmp_path / "lock"))
  assert holder == {"pid": os.getpid(), "host": socket.gethostname()}
  # flock is per open file, so a second lock in this process conflicts too.
  with pytest.raises(workdir_lock.WorkdirBusyError,
                     match=rf"process {os.getpid()} on host"):
    workdir_lock.WorkdirLock(str(tmp_path))
  lock.release()
  assert not (tmp_path / "lock").exists()
  workdir_lock.WorkdirLock(str(tmp_path)).release()  # free again


def test_a_dead_holder_on_this_host_is_taken_over(tmp_path, caplog):
  dead = _dead_pid()
  (tmp_path / "lock").write_text(json.dumps(
      {"pid": dead, "host": socket.gethostname()}))
  lock = workdir_lock.WorkdirLock(str(tmp_path))
  assert f"left by process {dead}" in caplog.text
  assert json.load(open(tmp_path / "lock"))["pid"] == os.getpid()
  lock.release()
  (tmp_path / "lock").write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
  with pytest.raises(workdir_lock.WorkdirBusyError,
                     match=r"process 1 on host elsewhere.*delete"):
    workdir_lock.WorkdirLock(str(tmp_path))


def test_holding_removes_a_workdir_it_created_for_a_refused_run(tmp_path):
  new = tmp_path / "new"
  with pytest.raises(ValueError, match="refused"):
    with workdir_lock.holding(str(new)):
      assert (new / "lock").exists()
      os.makedirs(new / "checkpoints")
      raise ValueError("refused")
  assert not new.exists()
  (tmp_path / "file").write_text("x")
  with pytest.raises(ValueError, match="is a file, not a directory"):
    workdir_lock.prepare_workdir(str(tmp_path / "file"))
  with pytest.raises(ValueError, match="cannot be created"):
    workdir_lock.prepare_workdir(str(tmp_path / "file" / "sub"))
  if os.geteuid() != 0:  # root writes anywhere
    os.chmod(tmp_path, 0o500)
    try:
      with pytest.raises(ValueError, match="not writable"):
        workdir_lock.prepare_workdir(str(tmp_path))
    finally:
      os.chmod(tmp_path, 0o700)
