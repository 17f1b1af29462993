"""Compare runs (e.g. an AE and a VAE) side by side.

  python -m experiments.compare --workdirs=/tmp/vae_heatmaps,/tmp/ae_heatmaps \
      --out=/tmp/compare

Writes `<out>/compare.csv` and `<out>/compare.md` (every eval.json metric,
one row per run; runs without eval.json are evaluated first) and
`<out>/compare.png`: latent codes, reconstruction-error histograms and images
decoded from one shared latent grid, one column per run. When a run has a
2-D latent space, PCA's 2-D projection of the same images is one more
column and row (`pca_2d`, the Keras MLP-autoencoder notebook's baseline: a
linear autoencoder with the same code size); `--nopca_baseline` leaves it
out.
"""

import csv
import json
import os

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: figures are written to files
from absl import app, flags, logging
from flax import nnx

from experiments.cli import (OUT, USER_ERRORS, exit_with_error, parse_flags,
                             quiet_library_logs)
from latent_jax import losses
from latent_jax.evaluation import exploration_figures
from latent_jax.evaluation.latent_views import pca_image_baseline
from latent_jax.evaluation.metrics import make_evaluator
from latent_jax.train.workdir import EVAL_FILE
from latent_jax.runs.vae import evaluate_workdir, restore_run

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Run directories to compare.")
_GRID = flags.DEFINE_integer("grid", 7, "Side of the shared latent grid.")
_PCA_BASELINE = flags.DEFINE_boolean(
    "pca_baseline", True, "Add PCA's 2-D projection of the images as a "
    "baseline column when a run has a 2-D latent space.")
flags.mark_flags_as_required(["workdirs", "out"])  # --out: cli.OUT

RUN_COLUMNS = ("run", "kind", "arch", "latent_dim", "kl_weight", "step")


def _run_name(workdir: str) -> str:
  return os.path.basename(os.path.normpath(workdir))


def _pca_baseline_column(dataset, grid: int) -> tuple[dict, dict]:
  """(table row, figure panels) of PCA's 2-D projection of `dataset`'s
  images, fitted on its training images."""
  images = np.asarray(dataset.test_images, np.float64)
  pca, points, reconstructions = pca_image_baseline(dataset.train_images,
                                                    images)
  flat_error = (reconstructions - images).reshape(len(images), -1)
  frobenius = np.sqrt((flat_error**2).sum(1))
  row = {"run": "pca_2d", "kind": "pca", "arch": "linear", "latent_dim": 2,
         "mse": float((flat_error**2).mean()),
         "frobenius": float(frobenius.mean()),
         "frobenius_median": float(np.median(frobenius)),
         "frobenius_p95": float(np.percentile(frobenius, 95))}
  # PCA's coordinates are not in prior units: its grid spans +-2 standard
  # deviations of the test points along each component.
  spread = 2.0 * points.std(axis=0)
  first, second = np.meshgrid(np.linspace(-spread[0], spread[0], grid),
                              np.linspace(spread[1], -spread[1], grid))
  grid_codes = np.stack([first.ravel(), second.ravel()], axis=1)
  ratio = 100 * pca.explained_variance_ratio
  panel = {"codes": points, "errors": frobenius,
           "grid": np.clip(pca.invert(grid_codes).reshape(
               (grid * grid,) + images.shape[1:]), 0.0, 1.0),
           "axis_names": (f"PC1 ({ratio[0]:.0f}% of pixel var)",
                          f"PC2 ({ratio[1]:.0f}%)"),
           "grid_title": "PCA inverse of a +-2 std grid"}
  return row, panel


def compare(workdirs: list[str], out: str, grid: int = 7,
            pca_baseline: bool = True) -> list[dict]:
  """Writes the table and the figure; returns the table rows.

  With `pca_baseline` and a run with a 2-D latent space, PCA of that run's
  images (fitted on its training images) is one more row and column.
  """
  os.makedirs(out, exist_ok=True)
  rows, panels = [], {k: [] for k in ("codes", "labels", "errors", "grid")}
  label_name, categorical, two_d_dataset = None, False, None
  for workdir in workdirs:
    if not os.path.exists(os.path.join(workdir, EVAL_FILE)):
      evaluate_workdir(workdir)
    with open(os.path.join(workdir, EVAL_FILE)) as file:
      metrics = json.load(file)
    config, dataset, model, step = restore_run(workdir)
    rows.append({"run": _run_name(workdir), "kind": config.model.kind,
                 "arch": config.model.arch,
                 "latent_dim": config.model.latent_dim,
                 "kl_weight": config.loss.kl_weight, **metrics,
                 "step": step})
    graphdef, params = nnx.split(model)
    images = jnp.asarray(dataset.test_images)
    per_example = make_evaluator(graphdef, config.loss.likelihood,
                                 config.loss.gaussian_scale,
                                 config.eval.batch_size)(
                                     params, images, jax.random.key(0))
    panels["codes"].append(np.asarray(jax.jit(model.embed)(images)))
    panels["labels"].append(dataset.test_labels[:, 0])
    panels["errors"].append(np.asarray(per_example["frobenius"]))
    # The same grid for every run: [-2, 2]^2 over the first two latent dims
    # (the prior's bulk for a VAE), other dims at 0.
    axis = np.linspace(-2.0, 2.0, grid, dtype=np.float32)
    codes = np.zeros((grid * grid, config.model.latent_dim), np.float32)
    first, second = np.meshgrid(axis, axis[::-1])
    codes[:, 0] = first.ravel()
    if config.model.latent_dim > 1:
      codes[:, 1] = second.ravel()
    panels["grid"].append(np.asarray(losses.decoder_mean(
        config.loss.likelihood, model.decode(jnp.asarray(codes)))))
    if label_name is None:
      label_name, categorical = (dataset.label_names[0],
                                 dataset.categorical[0])
    if config.model.latent_dim == 2 and two_d_dataset is None:
      two_d_dataset = dataset
  axis_names = [None] * len(rows)
  grid_titles = ["decoded from a shared latent grid"] * len(rows)
  if pca_baseline and two_d_dataset is not None:
    row, panel = _pca_baseline_column(two_d_dataset, grid)
    rows.append(row)
    for key in ("codes", "errors", "grid"):
      panels[key].append(panel[key])
    panels["labels"].append(two_d_dataset.test_labels[:, 0])
    axis_names.append(panel["axis_names"])
    grid_titles.append(panel["grid_title"])

  metric_names = sorted({k for row in rows for k in row} - set(RUN_COLUMNS))
  columns = list(RUN_COLUMNS) + metric_names
  with open(os.path.join(out, "compare.csv"), "w", newline="") as file:
    writer = csv.DictWriter(file, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
  with open(os.path.join(out, "compare.md"), "w") as file:
    file.write("| metric | " + " | ".join(r["run"] for r in rows) + " |\n")
    file.write("| --- |" + " --- |" * len(rows) + "\n")
    for name in columns[1:]:
      cells = [row.get(name, "") for row in rows]
      shown = [f"{c:.4g}" if isinstance(c, float) else str(c) for c in cells]
      file.write(f"| {name} | " + " | ".join(shown) + " |\n")
  exploration_figures.plot_run_comparison(
      [row["run"] for row in rows], panels["codes"], panels["labels"],
      label_name, panels["errors"], panels["grid"],
      os.path.join(out, "compare.png"), axis_names=axis_names,
      grid_titles=grid_titles, categorical=categorical,
      # Digits read best in gray; density heatmaps in a perceptual map.
      cmap="viridis" if panels["grid"][0].shape[1] >= 32 else "gray")
  logging.info("Wrote compare.csv, compare.md and compare.png to %s", out)
  return rows


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  quiet_library_logs()
  try:
    compare(_WORKDIRS.value, OUT.value, _GRID.value, _PCA_BASELINE.value)
  except USER_ERRORS as error:
    exit_with_error(error)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
