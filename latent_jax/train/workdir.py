"""A run's directory: its config, the same-run rule, JSON files, members.

A workdir holds one run. Its `config.json` is written once, by process 0,
and every later command on the same workdir must agree with it on the keys
that define the run (data, model, loss, seed, ...), so two different runs
are never mixed into one set of checkpoints and metrics.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import ml_collections

from latent_jax.train import distributed

CONFIG_FILE = "config.json"
EVAL_FILE = "eval.json"
MEMBERS_DIR = "members"
# Changing these on an existing workdir would mix two different runs.
RUN_DEFINING_KEYS = ("seed", "data", "model", "loss", "train.batch_size",
                     "ensemble.kl_weights", "ensemble.seeds")


def write_json(path: str, value: Any) -> str:
  """Writes `value` atomically (a temporary file, then a rename)."""
  with open(path + ".tmp", "w") as file:
    json.dump(value, file, indent=2, default=list)
  os.replace(path + ".tmp", path)
  return path


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def check_same_run(config_dict: dict[str, Any], workdir: str,
                   defining_keys: Sequence[str] = RUN_DEFINING_KEYS) -> None:
  """Raises ValueError naming each defining key that differs from the
  workdir's `config.json` (none there yet: nothing to check)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return
  with open(path) as file:
    previous = _flatten(json.load(file))
  current = _flatten(json.loads(json.dumps(config_dict, default=list)))
  changed = sorted(
      key for key in set(previous) | set(current)
      if key.startswith(tuple(defining_keys))
      and previous.get(key) != current.get(key))
  if changed:
    details = ", ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}"
                        for k in changed)
    raise ValueError(
        f"{workdir} holds a run with a different config ({details}). Resume "
        "it with its own config, or use a new --workdir.")


def start_run(config: ml_collections.ConfigDict, workdir: str,
              defining_keys: Sequence[str] = RUN_DEFINING_KEYS) -> None:
  """Creates `workdir`, checks it holds this run (or none), writes
  `config.json` (process 0)."""
  os.makedirs(workdir, exist_ok=True)
  config_dict = config.to_dict()
  check_same_run(config_dict, workdir, defining_keys)
  if distributed.is_chief():
    write_json(os.path.join(workdir, CONFIG_FILE), config_dict)


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run wrote to `<workdir>/config.json`."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"No {CONFIG_FILE} in {workdir}: is it the --workdir of a training "
        "run? Train first with python -m experiments.train.")
  with open(path) as file:
    return ml_collections.ConfigDict(json.load(file))


def write_eval(out_dir: str, step: int, summary: dict[str, Any]) -> str:
  """`<out_dir>/eval.json`: {"step", **summary} (process 0 only)."""
  path = os.path.join(out_dir, EVAL_FILE)
  if distributed.is_chief():
    write_json(path, {"step": int(step), **summary})
  return path


def member_dir(workdir: str, index: int, name: str) -> str:
  """Where ensemble member `index` (named e.g. `kl0.5_seed1`) writes its
  eval.json and figures/."""
  return os.path.join(workdir, MEMBERS_DIR, f"{index:02d}_{name}")
