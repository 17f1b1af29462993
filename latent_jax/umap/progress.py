"""A fit's clock and progress lines: `timings_` and the verbose log.

Every stage of a fit ends with `lap(name)`, which books the time since the
previous lap (or the start) under `name`, so the stages add up to the whole
wall time of the fit, with nothing counted twice: time spent waiting for
the compile-ahead threads is "compile", each training phase's chunks are
booked under the phase.

Lines go to this module's logger: at INFO with verbose=True, else DEBUG
(visible only to those who ask for it). verbose=True is a request to see
them: the logger's level, unless set already, becomes INFO, and where
logging has no handler at all a stderr handler is attached.
"""

from __future__ import annotations

import logging
import time

LOGGER = logging.getLogger(__name__)
PREFIX = "[ParametricUMAP] "


def show_lines() -> None:
  """Lets INFO lines through: a level set on this logger is kept."""
  if LOGGER.level == logging.NOTSET and not LOGGER.isEnabledFor(logging.INFO):
    LOGGER.setLevel(logging.INFO)
  if not LOGGER.hasHandlers():
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    LOGGER.addHandler(handler)


def log(verbose: bool, message: str) -> None:
  """One progress line (INFO if verbose, else DEBUG)."""
  LOGGER.log(logging.INFO if verbose else logging.DEBUG, PREFIX + message)


class Progress:
  """The clock and the log lines of one fit."""

  def __init__(self, verbose: bool):
    self.verbose = bool(verbose)
    if self.verbose:
      show_lines()
    self.timings: dict[str, float] = {}
    self._mark = time.perf_counter()
    self._phase_steps: dict[str, int] = {}

  def log(self, message: str) -> None:
    log(self.verbose, message)

  def lap(self, name: str) -> float:
    """Books the seconds since the previous lap under `name`; returns them."""
    now = time.perf_counter()
    seconds, self._mark = now - self._mark, now
    self.timings[name] = self.timings.get(name, 0.0) + seconds
    return seconds

  def chunk(self, phase: str, taken: int, done: int, phase_steps: int,
            loss: float) -> None:
    """After a chunk of `taken` steps that brought `phase` to `done` of its
    `phase_steps` steps: books its time, logs the progress and the ETA."""
    self.lap(phase)
    self._phase_steps[phase] = self._phase_steps.get(phase, 0) + taken
    rate = self._phase_steps[phase] / max(self.timings[phase], 1e-9)
    eta = (phase_steps - done) / max(rate, 1e-9)
    self.log(f"{phase} phase: step {done}/{phase_steps} | loss {loss:.4f} | "
             f"{rate:.0f} steps/s | ETA {eta:.1f} s")
