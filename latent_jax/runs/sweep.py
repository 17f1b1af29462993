"""Latent-dimension sweeps: one ensemble sub-run per latent dim, one summary.

Shapes change with the latent dim, so by default each dim is its own program
and its own run, `<workdir>/latent_<d>/`, training every (KL weight, seed)
member of `config.ensemble` side by side. With `sweep.one_program=True` the
whole grid (latent dim x KL weight x seed) is one run, `<workdir>/one_program/`:
one ensemble at the largest latent size where member (d, w, s) trains its
first d dims through a latent mask and is evaluated as the d-dim model
(train/ensemble.py, runs/member_models.py). Each run resumes like any run, so
a sweep command rerun after an interruption (or one SLURM array task per dim)
continues where it stopped. The summary reads the finished runs only, the
same either way:

- `summary.csv`: one row per member (`SUMMARY_COLUMNS`).
- the figures of `evaluation.registry.SWEEP_FIGURES` (metrics against KL
  weight, rate-distortion, reconstructions per cell).
"""

from __future__ import annotations

import csv
import functools
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
from latent_jax.runs.member_models import MemberModels, sized_config
from latent_jax.runs.vae import restore_ensemble, train_and_evaluate
from latent_jax.train.ensemble import check_latent_dims, ensemble_members
from latent_jax.train.metrics_writer import read_records
from latent_jax.train.workdir import CONFIG_FILE, EVAL_FILE, load_run_config

SUMMARY_FILE = "summary.csv"
ONE_PROGRAM_DIR = "one_program"  # the run of a one-program sweep
SUMMARY_COLUMNS = ("latent_dim", "kl_weight", "seed", "neg_elbo", "recon",
                   "kl", "active_units", "latent_knn_accuracy",
                   "train_seconds")


def latent_dims(config) -> tuple[int, ...]:
  """`sweep.latent_dims`, or just `model.latent_dim` when it is empty
  (a one-program sweep needs the list: ValueError naming the key)."""
  dims = check_latent_dims(config.sweep.latent_dims) if config.get(
      "sweep") else ()
  if not dims and is_one_program(config):
    raise ValueError("Invalid config value sweep.latent_dims=(): "
                     "sweep.one_program=True needs the latent dims to train; "
                     "list them, e.g. --config.sweep.latent_dims='(2,3)'.")
  return dims or (int(config.model.latent_dim),)


def is_one_program(config) -> bool:
  """`sweep.one_program`: the whole grid as one masked run."""
  return bool(config.get("sweep") and config.sweep.get("one_program", False))


def sub_workdir(workdir: str, latent_dim: int) -> str:
  return os.path.join(workdir, f"latent_{latent_dim}")


def one_program_workdir(workdir: str) -> str:
  return os.path.join(workdir, ONE_PROGRAM_DIR)


def one_program_config(config: ml_collections.ConfigDict
                       ) -> ml_collections.ConfigDict:
  """The one-program run's config: the model at the largest latent dim."""
  return sub_config(config, max(latent_dims(config)))


def sub_config(config: ml_collections.ConfigDict, latent_dim: int
               ) -> ml_collections.ConfigDict:
  """`config` with `model.latent_dim` set: the config of one sub-run."""
  config = sized_config(config, latent_dim)
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
  """Trains (or resumes) the sub-run of each latent dim in `dims`, or the
  one-program run of them all (`dims` must then be all or None)."""
  if is_one_program(config):
    if dims and tuple(dims) != latent_dims(config):
      raise ValueError(
          f"sweep.one_program=True trains every dim of sweep.latent_dims "
          f"{list(latent_dims(config))} in one run; it cannot train only "
          f"{list(dims)}: drop --latent_dims / --latent_dim_index or set "
          "--config.sweep.one_program=False.")
    logging.info("Sweep: latent_dims=%s in one program -> %s",
                 latent_dims(config), one_program_workdir(workdir))
    train_and_evaluate(one_program_config(config),
                       one_program_workdir(workdir))
    return
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
  member = ensemble_members(load_run_config(run_dir))[0]
  own_size = {} if member.latent_dim is None else {
      "latent_dim": member.latent_dim}
  return [{"member": 0, "kl_weight": member.kl_weight, "seed": member.seed,
           **own_size, **evaluation}]


def _run_dirs(workdir: str, dims: Sequence[int], one_program: bool
              ) -> list[tuple[str, int | None]]:
  """(run dir, its latent dim; None: each member's own) of the sweep."""
  if one_program:
    return [(one_program_workdir(workdir), None)]
  return [(sub_workdir(workdir, d), d) for d in dims]


def summary_rows(workdir: str, dims: Sequence[int],
                 one_program: bool = False) -> list[dict[str, Any]]:
  """One row per member of every finished sub-run (unfinished: skipped);
  a one-program run's rows: its members of the dims in `dims`."""
  rows = []
  for run_dir, latent_dim in _run_dirs(workdir, dims, one_program):
    entries = _member_entries(run_dir)
    if entries is None:
      logging.warning("Sweep summary: %s has no eval.json yet; skipped.",
                      run_dir)
      continue
    seconds = train_seconds(read_records(run_dir))
    for entry in entries:
      dim = entry["latent_dim"] if latent_dim is None else latent_dim
      if dim not in dims:
        continue
      rows.append({"latent_dim": dim, "member": entry["member"],
                   **{k: entry.get(k, "") for k in SUMMARY_COLUMNS[1:-1]},
                   "train_seconds": seconds})
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
                         num_images: int = 8, one_program: bool = False
                         ) -> CellReconstructions:
  """Evenly spaced test images, decoded by each member (as the model of its
  own latent size) from their posterior means (deterministic codes)."""
  images, cells = None, {}
  for run_dir, _ in _run_dirs(workdir, dims, one_program):
    if not os.path.exists(os.path.join(run_dir, EVAL_FILE)):
      continue
    config, dataset, model, members, params, _ = restore_ensemble(run_dir)
    if images is None:
      test = dataset.test_images
      images = test[np.linspace(0, len(test) - 1,
                                min(num_images, len(test))).astype(int)]
    sized = MemberModels(config, dataset.image_shape, model, members)
    likelihood = config.loss.likelihood

    @functools.partial(jax.jit, static_argnums=0)
    def reconstruct(graphdef, member_params, x):
      model = nnx.merge(graphdef, member_params)
      return losses.decoder_mean(likelihood, model.decode(model.embed(x)))

    for member in members:
      latent_dim = sized.latent_dim(member)
      if latent_dim in dims:
        cells[(latent_dim, member.kl_weight, member.seed)] = np.asarray(
            reconstruct(sized.graphdef(member),
                        sized.params(member, params[member.index]),
                        jnp.asarray(images)))
  return CellReconstructions(images, cells)


def write_summary(workdir: str, dims: Sequence[int], num_images: int = 8,
                  one_program: bool = False) -> list[dict[str, Any]]:
  """Writes summary.csv and the sweep figures; returns the rows.

  `one_program`: read `<workdir>/one_program/` (`sweep.one_program`)
  rather than the `latent_<d>/` sub-runs.
  """
  rows = summary_rows(workdir, dims, one_program)
  if not rows:
    where = (f"{ONE_PROGRAM_DIR}/eval.json" if one_program else
             f"latent_<d>/eval.json for d in {list(dims)}")
    raise FileNotFoundError(f"No finished sub-run under {workdir} ({where}): "
                            "run the sweep first.")
  write_summary_csv(rows, os.path.join(workdir, SUMMARY_FILE))
  images, cells = cell_reconstructions(workdir, dims, num_images,
                                       one_program)
  draw_figures(SWEEP_FIGURES, tuple(SWEEP_FIGURES),
               SweepFigureInputs(rows, images, cells), workdir)
  logging.info("Sweep summary: %d rows in %s", len(rows),
               os.path.join(workdir, SUMMARY_FILE))
  return rows


def sub_run_exists(workdir: str, latent_dim: int) -> bool:
  return os.path.exists(os.path.join(sub_workdir(workdir, latent_dim),
                                     CONFIG_FILE))
