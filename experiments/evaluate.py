"""Evaluate a run: restore its latest checkpoint, write eval.json + figures.

  python -m experiments.evaluate --workdir=/tmp/vae_heatmaps
  python -m experiments.evaluate --workdir=/tmp/vae_digits
      --figures=trajectories,traversals,latent_pca
      --trajectory_start=class:1 --trajectory_end=-1,0.5
      --rotation_plane=0,1 --rotation_center=origin
      --traversal_base=origin --view_line_start=-2,0 --view_line_end=2,1

(the second command is one line, shown wrapped).

A point is comma-separated latent coordinates (one per latent dim), `origin`,
`mean` (of the test codes), `class:<value>` (prototype: mean test code of a
class of the dataset's class label) or `<label>=<value>` (prototype of the
class, or of the quantile bin of a continuous label, holding the value, e.g.
`var_x=0.5`). Unset points are chosen from the data.
"""


import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files
from absl import app, flags

from experiments.cli import (USER_ERRORS, exit_with_error, parse_flags,
                             quiet_library_logs)
from latent_jax.evaluation.exploration import ExplorationOptions
from latent_jax.runs import run_module
from latent_jax.train.workdir import load_run_config

_POINT = ("comma-separated latent coordinates, origin, mean, class:<value> "
          "or <label>=<value>")

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory of a training "
                               "run (holds config.json and checkpoints/).")
_FIGURES = flags.DEFINE_string(
    "figures", None, "Comma-separated figure names (default: the run's "
    "eval.figures): loss_curves, reconstructions, samples, latent_codes, "
    "traversals, manifold, prototypes, trajectories, recon_errors, "
    "latent_pca.")
_TRAJECTORY_START = flags.DEFINE_string(
    "trajectory_start", None, f"Start of the line in trajectories.png: "
    f"{_POINT}. Default: the prototype of the first label's lowest value.")
_TRAJECTORY_END = flags.DEFINE_string(
    "trajectory_end", None, "End of the line in trajectories.png (same "
    "forms). Default: the prototype of the first label's highest value.")
_TRAJECTORY_STEPS = flags.DEFINE_integer(
    "trajectory_steps", 9, "Points decoded along each path (also the PCA "
    "view's line).")
_ROTATION_START = flags.DEFINE_string(
    "rotation_start", None, "Where the rotation in trajectories.png starts "
    "(same forms). Default: the center moved along the plane's first dim "
    "by the 75th percentile of the codes' radius.")
_ROTATION_CENTER = flags.DEFINE_string(
    "rotation_center", None, "The point the rotation turns about (same "
    "forms). Default: mean.")
_ROTATION_PLANE = flags.DEFINE_string(
    "rotation_plane", None, "Two latent dims the rotation turns in, i,j "
    "(default 0,1; the Keras VAE-vs-AE heatmap notebook also turns in 0,2).")
_ROTATION_DEGREES = flags.DEFINE_float(
    "rotation_degrees", 360.0, "How far the rotation turns, in degrees.")
_TRAVERSAL_BASE = flags.DEFINE_string(
    "traversal_base", "auto", "The code traversals.png and manifold.png "
    f"vary around: {_POINT}; auto: the first class's prototype when the "
    "data has a class label, else the prior mean (VAE) / mean training "
    "code (AE).")
_MANIFOLD_DIMS = flags.DEFINE_string(
    "manifold_dims", None, "Two latent dims of manifold.png, i,j "
    "(default 0,1).")
_VIEW_LINE_START = flags.DEFINE_string(
    "view_line_start", None, "Start of the line in latent_pca.png: x,y in "
    "the PCA view, or a latent point (class:<value>, <label>=<value>, "
    "origin, mean), projected. Default: with a class label first, its "
    "first class's prototype; else the 5th percentile of PC1.")
_VIEW_LINE_END = flags.DEFINE_string(
    "view_line_end", None, "End of the line in latent_pca.png (same forms; "
    "default: the last class's prototype, or the 95th percentile of PC1).")
flags.mark_flag_as_required("workdir")


def exploration_options() -> ExplorationOptions:
  """The exploration flags, syntax-checked (before any checkpoint loads)."""
  options = ExplorationOptions(
      trajectory_start=_TRAJECTORY_START.value,
      trajectory_end=_TRAJECTORY_END.value,
      trajectory_steps=_TRAJECTORY_STEPS.value,
      rotation_start=_ROTATION_START.value,
      rotation_center=_ROTATION_CENTER.value,
      rotation_plane=_ROTATION_PLANE.value,
      rotation_degrees=_ROTATION_DEGREES.value,
      traversal_base=_TRAVERSAL_BASE.value,
      manifold_dims=_MANIFOLD_DIMS.value,
      view_line_start=_VIEW_LINE_START.value,
      view_line_end=_VIEW_LINE_END.value)
  options.check_syntax()
  return options


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  quiet_library_logs()
  try:
    options = exploration_options()  # a typo fails before anything loads
    kind = load_run_config(_WORKDIR.value).model.kind
    run_module(kind).evaluate_workdir(_WORKDIR.value, _FIGURES.value,
                                      options)
  except USER_ERRORS as error:
    exit_with_error(error)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
