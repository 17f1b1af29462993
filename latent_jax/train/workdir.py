"""A run's directory: its config, the same-run rule, JSON files, members.

A workdir holds one run. Its `config.json` is written by process 0 once
every check of the command has passed, and every later command on the same
workdir must agree with it on every key that defines the run, so two
different runs are never mixed into one set of checkpoints and metrics.

The rule: every key defines the run (model, data, loss, optimiser and
schedule, `umap.*`, ensemble, seeds, steps, `init_from`) except those in
`NON_DEFINING_KEYS`, which change when or where things happen, or what is
reported, but not the trained state. A list of the keys that may change is
the safe direction: a key added later defines the run until it is listed.
"""

from __future__ import annotations

import json
import os
from typing import Any

import ml_collections

from latent_jax.train import distributed

CONFIG_FILE = "config.json"
EVAL_FILE = "eval.json"
MEMBERS_DIR = "members"
# Keys (or whole sections) a command may change on an existing workdir:
# cadences, the chunk programs' layout (the same steps either way), where the
# data is cached, evaluation and figure settings, the sweep's list of dims.
NON_DEFINING_KEYS = (
    "train.log_every_steps", "train.eval_every_steps",
    "train.checkpoint_every_steps", "train.keep_checkpoints",
    "train.steps_per_call", "train.chunk_mode", "ensemble.conv_batching",
    "ensemble.member_devices", "data.cache_dir", "data.data_dir", "eval.",
    "sweep.")
# config.json's record of the workdir whose checkpoint started this run.
INIT_FROM_KEY = "init_from"


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


def is_defining(key: str) -> bool:
  """Whether changing flattened `key` (e.g. "train.learning_rate") on an
  existing workdir would change the run's result."""
  return not any(key == k or (k.endswith(".") and key.startswith(k))
                 for k in NON_DEFINING_KEYS)


def run_record(config: ml_collections.ConfigDict,
               init_from: str | None = None) -> dict[str, Any]:
  """What `config.json` holds: the resolved config as plain JSON values,
  plus `init_from` (an absolute path) when the run started from another
  run's checkpoint."""
  record = json.loads(json.dumps(config.to_dict(), default=list))
  if init_from is not None:
    record[INIT_FROM_KEY] = os.path.abspath(init_from)
  return record


def check_same_run(record: dict[str, Any], workdir: str) -> None:
  """Raises ValueError listing each defining key (`key: old -> new`) that
  differs from the workdir's `config.json` (none there yet: nothing to
  check). Reads only."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return
  with open(path) as file:
    previous = _flatten(json.load(file))
  current = _flatten(json.loads(json.dumps(record, default=list)))
  changed = sorted(key for key in set(previous) | set(current)
                   if is_defining(key) and previous.get(key) != current.get(key))
  if changed:
    details = ", ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}"
                        for k in changed)
    raise ValueError(
        f"{workdir} holds a run with a different config ({details}). Resume "
        "it with its own config; to continue from it with these settings, "
        f"start a new --workdir with --init_from={workdir}.")


def write_config(record: dict[str, Any], workdir: str) -> None:
  """Writes `config.json` (process 0); call once every check has passed.

  Settings that do not define the run are rewritten to the latest command's.
  """
  if distributed.is_chief():
    write_json(os.path.join(workdir, CONFIG_FILE), record)


def start_run(config: ml_collections.ConfigDict, workdir: str,
              init_from: str | None = None) -> None:
  """Creates `workdir`, checks it holds this run (or none), writes
  `config.json` (process 0); for runs that need no other check."""
  os.makedirs(workdir, exist_ok=True)
  record = run_record(config, init_from)
  check_same_run(record, workdir)
  write_config(record, workdir)


def check_init_from(init_from: str | None, workdir: str) -> None:
  """Refuses an `init_from` that is `workdir` itself (ValueError) or holds
  no run (FileNotFoundError); None passes."""
  if init_from is None:
    return
  if os.path.abspath(init_from) == os.path.abspath(workdir):
    raise ValueError(f"--init_from={init_from} is the --workdir itself: to "
                     "resume, rerun without it; to start from it, give a new "
                     "--workdir.")
  if not os.path.isfile(os.path.join(init_from, CONFIG_FILE)):
    raise FileNotFoundError(f"--init_from={init_from} holds no "
                            f"{CONFIG_FILE}: give the --workdir of "
                            "a training run.")


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
