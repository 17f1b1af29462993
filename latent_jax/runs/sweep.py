"""Latent-dimension sweeps: one ensemble sub-run per latent dim, one summary.

Shapes change with the latent dim, so each dim is its own program and its
own run, `<workdir>/latent_<d>/`, training every (KL weight, seed) member of
`config.ensemble` side by side. Each sub-run resumes like any run, so a
sweep command rerun after an interruption (or one SLURM array task per dim)
continues where it stopped. The summary reads the finished sub-runs only:

- `summary.csv`: one row per member (`SUMMARY_COLUMNS`).
- the figures of `evaluation.registry.SWEEP_FIGURES` (metrics against KL
  weight, rate-distortion, reconstructions per cell).
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from latent_jax import losses
from latent_jax.evaluation.registry import (SWEEP_FIGURES, SweepFigureInputs,
                                            draw_figures)
from latent_jax.runs.vae import restore_ensemble, train_and_evaluate
from latent_jax.train.metrics_writer import read_records
from latent_jax.train.workdir import CONFIG_FILE, EVAL_FILE, load_run_config

SUMMARY_FILE = "summary.csv"
SUMMARY_COLUMNS = ("latent_dim", "kl_weight", "seed", "neg_elbo", "recon",
                   "kl", "active_units", "latent_knn_accuracy",
                   "train_seconds")


def latent_dims(config) -> tuple[int, ...]:
  """`sweep.latent_dims`, or just `model.latent_dim` when it is empty."""
  dims = tuple(config.sweep.latent_dims) if config.get("sweep") else ()
  for dim in dims:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
      raise ValueError(f"Invalid config value sweep.latent_dims={dims!r}: "
                       f"every entry must be an integer >= 1, got {dim!r}.")
  if len(set(dims)) != len(dims):
    raise ValueError(f"Invalid config value sweep.latent_dims={dims!r}: "
                     "entries repeat; list each dim once.")
  return dims or (int(config.model.latent_dim),)


def sub_workdir(workdir: str, latent_dim: int) -> str:
  return os.path.join(workdir, f"latent_{latent_dim}")


def sub_config(config: ml_collections.ConfigDict, latent_dim: int
               ) -> ml_collections.ConfigDict:
  """`config` with `model.latent_dim` set: the config of one sub-run."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.model.latent_dim = latent_dim
  config.lock()
  return config


def select_dims(dims: Sequence[int], only: Sequence[int] | None = None,
                index: int | None = None) -> tuple[int, ...]:
  """The dims a command trains: all, a named subset, or the `index`-th.

  `index` is what a SLURM array task passes (`$SLURM_ARRAY_TASK_ID`).
  """
  if only:
    unknown = sorted(set(only) - set(dims))
    if unknown:
      raise ValueError(f"--latent_dims {unknown} are not in the config's "
                       f"sweep.latent_dims {list(dims)}.")
    return tuple(d for d in dims if d in only)
  if index is not None:
    if not 0 <= index < len(dims):
      raise ValueError(f"--latent_dim_index={index} is out of range: the "
                       f"sweep has {len(dims)} latent dims {list(dims)} "
                       f"(indices 0..{len(dims) - 1}).")
    return (dims[index],)
  return tuple(dims)


def run_sweep(config: ml_collections.ConfigDict, workdir: str,
              dims: Sequence[int] | None = None) -> None:
  """Trains (or resumes) the sub-run of each latent dim in `dims`."""
  for latent_dim in dims or latent_dims(config):
    logging.info("Sweep: latent_dim=%d -> %s", latent_dim,
                 sub_workdir(workdir, latent_dim))
    train_and_evaluate(sub_config(config, latent_dim),
                       sub_workdir(workdir, latent_dim))


def train_seconds(records: list[dict[str, Any]]) -> float:
  """Training time of a run from its train records (sums across resumes).

  Each record covers the steps since the previous one at `steps_per_sec`;
  with several members every member's record carries the shared rate.
  """
  total, previous = 0.0, 0
  steps_seen = set()
  for record in records:
    if record.get("split") != "train" or record["step"] in steps_seen:
      continue
    steps_seen.add(record["step"])
    total += (record["step"] - previous) / max(record["steps_per_sec"], 1e-9)
    previous = record["step"]
  return total


def _member_entries(run_dir: str) -> list[dict[str, Any]] | None:
  path = os.path.join(run_dir, EVAL_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as file:
    evaluation = json.load(file)
  if "members" in evaluation:
    return evaluation["members"]
  config = load_run_config(run_dir)
  return [{"member": 0, "kl_weight": config.loss.kl_weight,
           "seed": config.seed, **evaluation}]


def summary_rows(workdir: str, dims: Sequence[int]) -> list[dict[str, Any]]:
  """One row per member of every finished sub-run (unfinished: skipped)."""
  rows = []
  for latent_dim in dims:
    run_dir = sub_workdir(workdir, latent_dim)
    entries = _member_entries(run_dir)
    if entries is None:
      logging.warning("Sweep summary: %s has no eval.json yet; skipped.",
                      run_dir)
      continue
    seconds = train_seconds(read_records(run_dir))
    for entry in entries:
      row = {"latent_dim": latent_dim, "member": entry["member"],
             **{k: entry.get(k, "") for k in SUMMARY_COLUMNS[1:-1]},
             "train_seconds": seconds}
      rows.append(row)
  return rows


def write_summary_csv(rows: list[dict[str, Any]], path: str) -> None:
  """CSV with `SUMMARY_COLUMNS`; `latent_knn_accuracy` only with labels."""
  columns = [c for c in SUMMARY_COLUMNS
             if c != "latent_knn_accuracy"
             or any(row.get(c, "") != "" for row in rows)]
  with open(path + ".tmp", "w", newline="") as file:
    writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  os.replace(path + ".tmp", path)


class CellReconstructions(NamedTuple):
  """The same test images reconstructed by every member of the sweep."""
  images: np.ndarray | None  # [n, H, W, C]; None: no finished sub-run
  cells: dict[tuple[int, float, int], np.ndarray]  # (dim, w, seed) -> recons


def cell_reconstructions(workdir: str, dims: Sequence[int],
                         num_images: int = 8) -> CellReconstructions:
  """Evenly spaced test images, decoded by each member from their
  posterior means (deterministic codes)."""
  images, cells = None, {}
  for latent_dim in dims:
    run_dir = sub_workdir(workdir, latent_dim)
    if not os.path.exists(os.path.join(run_dir, EVAL_FILE)):
      continue
    config, dataset, model, members, params, _ = restore_ensemble(run_dir)
    if images is None:
      test = dataset.test_images
      images = test[np.linspace(0, len(test) - 1,
                                min(num_images, len(test))).astype(int)]
    graphdef = nnx.split(model)[0]
    reconstruct = jax.jit(lambda p, x: losses.decoder_mean(
        config.loss.likelihood,
        nnx.merge(graphdef, p).decode(nnx.merge(graphdef, p).embed(x))))
    for member in members:
      cells[(latent_dim, member.kl_weight, member.seed)] = np.asarray(
          reconstruct(params[member.index], jnp.asarray(images)))
  return CellReconstructions(images, cells)


def write_summary(workdir: str, dims: Sequence[int],
                  num_images: int = 8) -> list[dict[str, Any]]:
  """Writes summary.csv and the sweep figures; returns the rows."""
  rows = summary_rows(workdir, dims)
  if not rows:
    raise FileNotFoundError(
        f"No finished sub-run under {workdir} (latent_<d>/eval.json for d in "
        f"{list(dims)}): run the sweep first.")
  write_summary_csv(rows, os.path.join(workdir, SUMMARY_FILE))
  images, cells = cell_reconstructions(workdir, dims, num_images)
  draw_figures(SWEEP_FIGURES, tuple(SWEEP_FIGURES),
               SweepFigureInputs(rows, images, cells), workdir)
  logging.info("Sweep summary: %d rows in %s", len(rows),
               os.path.join(workdir, SUMMARY_FILE))
  return rows


def sub_run_exists(workdir: str, latent_dim: int) -> bool:
  return os.path.exists(os.path.join(sub_workdir(workdir, latent_dim),
                                     CONFIG_FILE))
