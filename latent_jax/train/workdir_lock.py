"""One process per workdir: a lock file held for the run's life.

`<workdir>/lock` holds `{"pid", "host"}` of its holder and an exclusive
`flock` on it, which the kernel drops when the holder dies, however it
dies. A second process is refused at once, naming the holder. A lock file
whose flock is free was left by a process that died (SIGKILL, a crash):
one from this host is taken over with a warning; one from another host is
refused, since a shared filesystem may not carry flocks between hosts (the
message says to delete the file once that process is gone). Multi-host runs
take it once, in process 0. Reason: two processes on one workdir would
interleave checkpoints and metrics.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from typing import Any, Callable, Iterator

from absl import logging

from latent_jax.train import distributed
from latent_jax.train import workdir as workdir_lib

LOCK_FILE = "lock"


class WorkdirBusyError(RuntimeError):
  """Another process holds (or may hold) the workdir's lock."""


def prepare_workdir(workdir: str) -> bool:
  """Creates `workdir` if needed; returns whether it was created.

  Raises ValueError if it is a file, cannot be created or is not writable.
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f"workdir {workdir!r} is a file, not a directory: give "
                     "a directory path (new or of an earlier run).")
  created = not os.path.exists(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as error:
    raise ValueError(f"workdir {workdir!r} cannot be created "
                     f"({error.strerror}): choose a writable path.") from None
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise ValueError(f"workdir {workdir!r} is not writable: choose a "
                     "writable path or fix its permissions.")
  return created


def _read_holder(fd: int) -> dict:
  os.lseek(fd, 0, os.SEEK_SET)
  text = os.read(fd, 4096).decode(errors="replace")
  try:
    holder = json.loads(text) if text.strip() else {}
  except json.JSONDecodeError:
    holder = {}
  return holder if isinstance(holder, dict) else {}


def _describe(holder: dict) -> str:
  return (f"process {holder.get('pid', '?')} on host "
          f"{holder.get('host', '?')}")


class WorkdirLock:
  """The held lock of one workdir; `release()` once."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd = self._acquire()

  def _acquire(self) -> int:
    host = socket.gethostname()
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as error:
        if error.errno not in (errno.EAGAIN, errno.EACCES):
          os.close(fd)
          raise
        holder = _read_holder(fd)
        os.close(fd)
        raise WorkdirBusyError(
            f"{os.path.dirname(self.path)} is in use by {_describe(holder)} "
            f"(lock file {self.path}): one process per workdir. Wait for it "
            "to finish or stop it, or use another --workdir.") from None
      try:  # the holder may have removed the file between open and flock
        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
      except FileNotFoundError:
        same = False
      if not same:
        os.close(fd)
        continue
      previous = _read_holder(fd)
      if previous and previous.get("host") != host:
        os.close(fd)
        raise WorkdirBusyError(
            f"{os.path.dirname(self.path)} was locked by "
            f"{_describe(previous)}, which this host cannot check: if no "
            f"process there still uses it, delete {self.path} and rerun.")
      if previous:
        logging.warning("Took over the lock %s left by %s, which is no "
                        "longer running.", self.path, _describe(previous))
      os.ftruncate(fd, 0)
      os.lseek(fd, 0, os.SEEK_SET)
      os.write(fd, json.dumps({"pid": os.getpid(), "host": host}).encode())
      os.fsync(fd)
      return fd

  def release(self) -> None:
    """Removes the lock file, then drops the flock (waiters then retry)."""
    if self._fd is None:
      return
    with contextlib.suppress(FileNotFoundError):
      os.unlink(self.path)
    os.close(self._fd)
    self._fd = None


def _remove_if_empty(directory: str) -> None:
  """Removes `directory` if it holds no file (only empty folders)."""
  if any(files for _, _, files in os.walk(directory)):
    return
  for root, _, _ in sorted(os.walk(directory), key=lambda w: -len(w[0])):
    with contextlib.suppress(OSError):
      os.rmdir(root)


@contextlib.contextmanager
def holding(workdir: str) -> Iterator[None]:
  """Creates `workdir` if needed and holds its lock (process 0) inside.

  A workdir this call created and left without a file (a refused run) is
  removed again, so a refusal leaves nothing behind.
  """
  created = prepare_workdir(workdir)
  lock, refused = None, None
  if distributed.is_chief():
    try:
      lock = WorkdirLock(workdir)
    except WorkdirBusyError as error:
      refused = error
  # Every process learns of a refusal, rather than wait in a collective.
  if distributed.any_process(refused is not None):
    if refused is not None:
      raise refused
    raise WorkdirBusyError(f"{workdir} is in use: process 0 of this job "
                           "could not lock it (see its error).")
  try:
    yield
  finally:
    if lock is not None:
      lock.release()
      if created:
        _remove_if_empty(workdir)


@contextlib.contextmanager
def opening_run(config: Any, workdir: str, init_from: str | None,
                validate: Callable[[Any], None]) -> Iterator[None]:
  """Every run's start, in one order, then the lock for its life.

  The processes' configs are compared first (a process refused later would
  leave the others waiting in a collective), then `validate(config)` and
  `--init_from` are checked before the workdir is touched.
  """
  distributed.initialize()  # a no-op unless launched as several processes
  distributed.check_same_config(workdir_lib.run_record(config, init_from))
  validate(config)
  workdir_lib.check_init_from(init_from, workdir)
  with holding(workdir):
    yield
