"""Metrics as JSON lines in `<workdir>/metrics.jsonl`, mirrored to TensorBoard
event files in `<workdir>/tensorboard/` (process 0 only).

metrics.jsonl is the source of truth (the loss curves, resumes and the
benchmarks read it); the TensorBoard mirror (tensorboardX, no TensorFlow)
holds the same scalars at the same steps, tagged `split/metric`
(`member_<i>/split/metric` for an ensemble member's record), and the
figures a run hands it as images. A TensorBoard failure (tensorboardX
missing, an unwritable directory) is logged once and turns the mirror off:
it never stops a run.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from typing import Any, Callable, NamedTuple

from absl import logging

from latent_jax.train import distributed

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
# Record fields that are not scalars to plot: the record's place.
NOT_SCALARS = ("step", "member")
_warned: set[str] = set()  # TensorBoard dirs whose failure was logged
_file_counter = itertools.count()  # distinct event file names per process


def _plain(value: Any) -> Any:
  if hasattr(value, "item"):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/Inf; keep them readable.
  return value


def read_records(workdir: str) -> list[dict[str, Any]]:
  """All records of a run, in order; [] if there are none."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  records = []
  with open(path) as file:
    for line in file:
      line = line.strip()
      if not line:
        continue
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError:
        continue  # a line cut short by a killed process
  return records


def scalar_tags(split: str, metrics: dict[str, Any]) -> dict[str, float]:
  """{tag: value} of a record's numbers: `split/key`, prefixed `member_<i>/`
  when the record names its ensemble member; strings and bools are skipped,
  NaN and inf kept (TensorBoard draws them as gaps)."""
  prefix = f"member_{int(metrics['member'])}/" if "member" in metrics else ""
  tags = {}
  for key, value in metrics.items():
    value = value.item() if hasattr(value, "item") else value
    if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(
        value, (int, float)):
      continue
    tags[f"{prefix}{split}/{key}"] = float(value)
  return tags


class _TensorBoardX(NamedTuple):
  """The tensorboardX modules the mirror uses."""
  event_file_writer: Any
  event_pb2: Any
  summary: Any
  utils: Any


def _tensorboardx() -> _TensorBoardX:
  """Imported on first use: a missing tensorboardX is a warning, not an
  import error of every run."""
  # pylint: disable=g-import-not-at-top
  from tensorboardX import event_file_writer, summary, utils
  from tensorboardX.proto import event_pb2
  return _TensorBoardX(event_file_writer, event_pb2, summary, utils)


class TensorBoardWriter:
  """Scalars and figures as TensorBoard events in `<workdir>/tensorboard/`.

  Writes synchronously (tensorboardX's EventsWriter, no background thread):
  the event file opens on the first write and each write is flushed, so a
  killed run loses nothing and a live TensorBoard sees every record.
  `purge_step`: a resumed run's first step, from which TensorBoard hides the
  events an earlier attempt wrote.
  """

  def __init__(self, workdir: str, enabled: bool = True):
    self.logdir = os.path.join(workdir, TENSORBOARD_DIR)
    self.enabled = bool(enabled) and distributed.is_chief()
    self.purge_step: int | None = None
    self._events = None

  def _write(self, step: int,
             summaries: Callable[[_TensorBoardX], list[Any]]) -> None:
    """Writes an Event at `step` per Summary that `summaries()` builds."""
    if not self.enabled:
      return
    try:
      tbx = _tensorboardx()
      event_pb2 = tbx.event_pb2
      if self._events is None:
        os.makedirs(self.logdir, exist_ok=True)
        self._events = tbx.event_file_writer.EventsWriter(
            os.path.join(self.logdir, "events"),
            f".{os.getpid()}.{next(_file_counter)}")
        if self.purge_step is not None:  # TensorBoard's restart marker
          self._events.write_event(event_pb2.Event(
              step=self.purge_step, wall_time=time.time(),
              session_log=event_pb2.SessionLog(
                  status=event_pb2.SessionLog.START)))
      for summary in summaries(tbx):
        self._events.write_event(event_pb2.Event(
            step=int(step), wall_time=time.time(), summary=summary))
      self._events.flush()
    except Exception as error:  # noqa: BLE001 - never lose a run to a log
      self.enabled = False
      if self.logdir not in _warned:
        _warned.add(self.logdir)
        logging.warning(
            "TensorBoard logging to %s is off: %s: %s. metrics.jsonl and "
            "the figures are unaffected; pip install tensorboardX, make the "
            "directory writable, or set config.log.tensorboard=False.",
            self.logdir, type(error).__name__, error)

  def scalars(self, step: int, split: str, metrics: dict[str, Any]) -> None:
    """The record's numbers (`scalar_tags`) at `step`."""
    tags = scalar_tags(split, metrics)

    def build(tbx):
      return [tbx.summary.scalar(tag, value) for tag, value in tags.items()]

    self._write(step, build)

  def figure(self, step: int, tag: str, figure) -> None:
    """A matplotlib figure, rendered as an image; the figure stays open."""

    def build(tbx):
      image = tbx.utils.figure_to_image(figure, close=False)  # [3, H, W]
      return [tbx.summary.image(tag, image)]

    self._write(step, build)

  def figure_logger(self, step: int) -> Callable[[str, Any], None]:
    """`on_figure(name, figure)` for the evaluation: images at `step`."""
    return lambda name, figure: self.figure(step, name, figure)

  def close(self) -> None:
    if self._events is not None:
      try:
        self._events.close()
      except Exception:  # noqa: BLE001 - every write was flushed already
        pass
      self._events = None


class MetricsWriter:
  """Appends one JSON object per line; each record carries its `step`.

  With `tensorboard` (config.log.tensorboard), each record's numbers also go
  to `<workdir>/tensorboard/` (`TensorBoardWriter`).
  """

  def __init__(self, workdir: str, tensorboard: bool = True):
    self.path = os.path.join(workdir, METRICS_FILE)
    self.enabled = distributed.is_chief()
    self.tensorboard = TensorBoardWriter(workdir, tensorboard)

  def truncate_after(self, step: int) -> None:
    """Drops records past `step`: a resumed run rewrites them, so none repeat
    (TensorBoard hides its events past `step` from the next event file on)."""
    self.tensorboard.purge_step = int(step) + 1
    if not self.enabled or not os.path.exists(self.path):
      return
    kept = [r for r in read_records(os.path.dirname(self.path))
            if r.get("step", 0) <= step]
    temporary = self.path + ".tmp"
    with open(temporary, "w") as file:
      for record in kept:
        file.write(json.dumps(record) + "\n")
    os.replace(temporary, self.path)

  def write(self, step: int, split: str, metrics: dict[str, Any]) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), "split": split}
    record.update({k: _plain(v) for k, v in metrics.items()})
    with open(self.path, "a") as file:
      file.write(json.dumps(record) + "\n")
    self.tensorboard.scalars(step, split, metrics)
