"""Compare runs (e.g. an AE and a VAE) side by side.

  python -m experiments.compare --workdirs=/tmp/vae_heatmaps,/tmp/ae_heatmaps \
      --out=/tmp/compare

Writes `<out>/compare.csv` and `<out>/compare.md` (every eval.json metric,
one row per run; runs without eval.json are evaluated first) and
`<out>/compare.png`: latent codes, reconstruction-error histograms and images
decoded from one shared latent grid, one column per run.
"""

import csv
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging
from flax import nnx

from experiments.cli import parse_flags, quiet_library_logs
from latent_jax import losses
from latent_jax.evaluation import figures
from latent_jax.evaluation.metrics import make_evaluator
from latent_jax.evaluation.report import EVAL_FILE
from latent_jax.train.loop import evaluate_workdir, restore_run

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Run directories to compare.")
_OUT = flags.DEFINE_string("out", None, "Output directory.")
_GRID = flags.DEFINE_integer("grid", 7, "Side of the shared latent grid.")
flags.mark_flags_as_required(["workdirs", "out"])

RUN_COLUMNS = ("run", "kind", "arch", "latent_dim", "kl_weight", "step")


def _run_name(workdir: str) -> str:
  return os.path.basename(os.path.normpath(workdir))


def compare(workdirs: list[str], out: str, grid: int = 7) -> list[dict]:
  """Writes the table and the figure; returns the table rows."""
  os.makedirs(out, exist_ok=True)
  rows, panels = [], {k: [] for k in ("codes", "labels", "errors", "grid")}
  label_name = None
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
    label_name = label_name or dataset.label_names[0]

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
  figures.plot_run_comparison(
      [row["run"] for row in rows], panels["codes"], panels["labels"],
      label_name, panels["errors"], panels["grid"],
      os.path.join(out, "compare.png"))
  logging.info("Wrote compare.csv, compare.md and compare.png to %s", out)
  return rows


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  quiet_library_logs()
  try:
    compare(_WORKDIRS.value, _OUT.value, _GRID.value)
  except (ValueError, FileNotFoundError) as error:
    logging.error("%s", error)
    sys.exit(f"error: {error}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
