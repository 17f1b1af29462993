"""Metrics as JSON lines in `<workdir>/metrics.jsonl` (process 0 only)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from latent_jax.train import distributed

METRICS_FILE = "metrics.jsonl"


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


class MetricsWriter:
  """Appends one JSON object per line; each record carries its `step`."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, METRICS_FILE)
    self.enabled = distributed.is_chief()

  def truncate_after(self, step: int) -> None:
    """Drops records past `step`: a resumed run rewrites them, so none repeat."""
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
