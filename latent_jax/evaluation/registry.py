"""The figures of every run kind, by name: what `eval.figures` picks from.

Each registry maps a figure's name to the function that draws it. An entry
takes its kind's inputs (one dataclass of arrays and callables, built once
per evaluation) and returns the matplotlib Figure, open (a notebook shows
it), or None where the figure does not apply (a 2-D view of 1-D codes, say).
`draw_figures` saves each to `<out_dir>/<name>.png`, hands it to an optional
`on_figure(name, figure)` (TensorBoard's images), closes it and logs its
time. Key order is the order in which "all" draws them.

  RUN_FIGURES    a VAE/AE run (`report.evaluate_and_plot`): RunFigureInputs
  UMAP_FIGURES   a parametric UMAP run (`umap_report.evaluate_reducer`):
                 UmapFigureInputs
  SWEEP_FIGURES  a latent-dim sweep's summary: SweepFigureInputs

Adding a figure is one function here and one entry in its registry; config
checks, the `--figures` flag and "all" follow from the registry.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np

from latent_jax.evaluation import exploration
from latent_jax.evaluation import figures
from latent_jax.evaluation import sweep_figures
from latent_jax.evaluation import umap_figures
from latent_jax.evaluation import view_figures
from latent_jax.evaluation.plot_utils import finish_figure, image_cmap
from latent_jax.evaluation.progress import phase

# inputs -> the Figure (open), or None when the figure does not apply.
Figure = Callable[[Any], Optional[plt.Figure]]
# Called with each drawn figure before it is closed (e.g. to log it).
OnFigure = Callable[[str, plt.Figure], None]
# The run figures a TensorBoard log shows as images at each evaluation.
IMAGE_FIGURES = ("reconstructions", "samples")


def select_figures(spec: str | Sequence[str] | None,
                   registry: Iterable[str]) -> tuple[str, ...]:
  """The names `spec` selects from `registry` (a registry or its names).

  `spec`: "all", "" or None (every figure, in registry order), or a
  comma-separated subset (or a sequence of names), kept in the given order.
  Raises ValueError naming the unknown figures and listing the known ones.
  """
  known = tuple(registry)
  if spec is not None and not isinstance(spec, str):
    spec = ",".join(spec)
  if spec in ("all", "", None):
    return known
  names = tuple(name.strip() for name in spec.split(",") if name.strip())
  unknown = [name for name in names if name not in known]
  if unknown:
    raise ValueError(f"Invalid config value eval.figures={spec!r}: unknown "
                     f"figure(s) {unknown}; known: {list(known)}.")
  return names


def check_figures(names: Iterable[str], registry: Mapping[str, Figure]
                  ) -> None:
  """Raises ValueError if any of `names` is not in `registry`."""
  unknown = [name for name in names if name not in registry]
  if unknown:
    raise ValueError(f"Unknown figure(s) {unknown}; known: "
                     f"{list(registry)}.")


def draw_figures(registry: Mapping[str, Figure], names: Sequence[str],
                 inputs: Any, out_dir: str,
                 on_figure: OnFigure | None = None) -> dict[str, str | None]:
  """Draws each of `names` to `<out_dir>/<name>.png`, in the given order.

  Each drawn figure goes to `on_figure(name, figure)` (when given) before it
  is closed; a failing `on_figure` is the caller's to report, never a lost
  figure (it runs after the save).

  Returns {name: path, or None where the figure did not apply}.
  """
  check_figures(names, registry)
  if names:
    os.makedirs(out_dir, exist_ok=True)
  paths = {}
  for name in names:
    with phase(f"{name}.png"):
      figure = registry[name](inputs)
      if figure is None:
        paths[name] = None
        continue
      path = os.path.join(out_dir, f"{name}.png")
      try:
        finish_figure(figure, path)
        if on_figure is not None:
          on_figure(name, figure)
      finally:
        plt.close(figure)
      paths[name] = path
  return paths


# --- A VAE/AE run -------------------------------------------------------------


@dataclasses.dataclass
class RunFigureInputs:
  """What the figures of a VAE/AE run are drawn from.

  Attributes:
    latent: test codes [N, D] and labels [N, L] with their names and flags,
      and the code distribution (`base_mean`, `base_scale` [D]) that
      samples and traversals are drawn around.
    decode: codes [M, D] -> images [M, H, W, C] in [0, 1] (decoder means).
    embed: images [n, H, W, C] -> their deterministic codes [n, D].
    shown: [n, H, W, C] test images of the reconstructions figure.
    records: metrics.jsonl records, for the loss curves.
    frobenius: [N] per-image reconstruction errors.
    plan: the resolved points of the exploration figures
      (`exploration.plan_exploration`); None when none is drawn.
    sample_title: title of the samples figure.
    num_images: images in the reconstructions and samples figures.
    cmap: colour map of single-channel images (`plot_utils.image_cmap`).
  """

  latent: exploration.LatentContext
  decode: Callable[[np.ndarray], np.ndarray]
  embed: Callable[[np.ndarray], np.ndarray]
  shown: np.ndarray
  records: Sequence[dict[str, Any]]
  frobenius: np.ndarray
  plan: exploration.ExplorationPlan | None
  sample_title: str
  num_images: int
  cmap: str


def _loss_curves(inputs: RunFigureInputs) -> plt.Figure:
  return figures.plot_loss_curves(list(inputs.records))


def _reconstructions(inputs: RunFigureInputs) -> plt.Figure:
  return figures.plot_reconstructions(
      inputs.shown, inputs.decode(inputs.embed(inputs.shown)),
      max_images=inputs.num_images, cmap=inputs.cmap)


def _samples(inputs: RunFigureInputs) -> plt.Figure:
  # Fixed noise: the same samples at every evaluation of a run.
  latent = inputs.latent
  noise = np.random.default_rng(0).standard_normal(
      (inputs.num_images, len(latent.base_mean))).astype(np.float32)
  return figures.plot_samples(
      inputs.decode(latent.base_mean + latent.base_scale * noise),
      title=inputs.sample_title, cmap=inputs.cmap)


def _latent_codes(inputs: RunFigureInputs) -> plt.Figure:
  latent = inputs.latent
  return figures.plot_latent_codes(latent.codes, latent.labels,
                                   latent.label_names,
                                   categorical=latent.categorical)


def _recon_errors(inputs: RunFigureInputs) -> plt.Figure:
  return figures.plot_reconstruction_errors(inputs.frobenius)


def _exploration_figure(name: str) -> Figure:
  """The entry of exploration figure `name` (`exploration.draw_figure`)."""

  def draw(inputs: RunFigureInputs) -> plt.Figure | None:
    return exploration.draw_figure(name, inputs.plan, inputs.latent,
                                   inputs.decode, cmap=inputs.cmap)

  draw.__name__ = f"_{name}"
  return draw


def _view_figure(name: str) -> Figure:
  """The entry of 2-D view figure `name` (`view_figures.draw_view`)."""

  def draw(inputs: RunFigureInputs) -> plt.Figure | None:
    return view_figures.draw_view(name, inputs.plan, inputs.latent,
                                  inputs.decode, cmap=inputs.cmap)

  draw.__name__ = f"_{name}"
  return draw


RUN_FIGURES: dict[str, Figure] = {
    "loss_curves": _loss_curves,
    "reconstructions": _reconstructions,
    "samples": _samples,
    "latent_codes": _latent_codes,
    "traversals": _exploration_figure("traversals"),
    "manifold": _exploration_figure("manifold"),
    "prototypes": _exploration_figure("prototypes"),
    "trajectories": _exploration_figure("trajectories"),
    "recon_errors": _recon_errors,
    "latent_pca": _view_figure("latent_pca"),
    "latent_umap": _view_figure("latent_umap"),
    "latent_tsne": _view_figure("latent_tsne"),
}
# The figures that need `RunFigureInputs.plan`: resolve it only for them.
EXPLORATION_FIGURES = exploration.FIGURES + view_figures.FIGURES


# --- A parametric UMAP run ----------------------------------------------------


@dataclasses.dataclass
class UmapFigureInputs:
  """What the figures of a parametric UMAP run are drawn from.

  Attributes:
    embedding: [N, K] test embedding.
    invert: points [M, 2] -> images [M, ...] (the reducer's inverse map).
    records: metrics.jsonl records; those with a "loss" are plotted.
    labels: [N] values of the first label to colour by, or None;
      label_name and categorical describe it.
    title: title of the embedding scatter.
    cmap: colour map of single-channel images (`plot_utils.image_cmap`).
  """

  embedding: np.ndarray
  invert: Callable[[np.ndarray], np.ndarray]
  records: Sequence[dict[str, Any]]
  labels: np.ndarray | None
  label_name: str
  categorical: bool
  title: str
  cmap: str


def _umap_embedding(inputs: UmapFigureInputs) -> plt.Figure:
  return umap_figures.plot_embedding(
      inputs.embedding, labels=inputs.labels,
      label_name=inputs.label_name, categorical=inputs.categorical,
      title=inputs.title)


def _umap_loss_curves(inputs: UmapFigureInputs) -> plt.Figure | None:
  records = [r for r in inputs.records if "loss" in r]
  if not records:
    return None
  return figures.plot_loss_curves(records, keys=["loss"])


def _inverse_grid(inputs: UmapFigureInputs) -> plt.Figure | None:
  if inputs.embedding.shape[1] != 2:  # the grid lives in a 2-D embedding
    return None
  with warnings.catch_warnings():  # default corners lie inside the hull
    warnings.simplefilter("ignore")
    return umap_figures.plot_inverse_grid(
        inputs.embedding, inputs.invert, labels=inputs.labels,
        label_name=inputs.label_name, categorical=inputs.categorical,
        cmap=inputs.cmap)


UMAP_FIGURES: dict[str, Figure] = {
    "umap_embedding": _umap_embedding,
    "loss_curves": _umap_loss_curves,
    "inverse_grid": _inverse_grid,
}


# --- A latent-dim sweep -------------------------------------------------------


@dataclasses.dataclass
class SweepFigureInputs:
  """What the figures of a sweep's summary are drawn from.

  Attributes:
    rows: the summary.csv rows (dicts: latent_dim, kl_weight, seed and
      metrics), one per member of every finished sub-run.
    images: [n, H, W, C] test images shown above the cells, or None.
    cells: {(latent_dim, kl_weight, seed): reconstructions [n, H, W, C]}.
  """

  rows: Sequence[dict[str, Any]]
  images: np.ndarray | None = None
  cells: dict[tuple[int, float, int], np.ndarray] | None = None


def _metrics_vs_kl_weight(inputs: SweepFigureInputs) -> plt.Figure:
  return sweep_figures.plot_metrics_vs_kl_weight(inputs.rows)


def _rate_distortion(inputs: SweepFigureInputs) -> plt.Figure:
  return sweep_figures.plot_rate_distortion(inputs.rows)


def _reconstructions_per_cell(inputs: SweepFigureInputs
                              ) -> plt.Figure | None:
  if inputs.images is None or not inputs.cells:
    return None
  return sweep_figures.plot_reconstructions_per_cell(
      inputs.images, inputs.cells, cmap=image_cmap(inputs.images))


SWEEP_FIGURES: dict[str, Figure] = {
    "metrics_vs_kl_weight": _metrics_vs_kl_weight,
    "rate_distortion": _rate_distortion,
    "reconstructions_per_cell": _reconstructions_per_cell,
}
