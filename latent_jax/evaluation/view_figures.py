"""The 2-D views of a run's codes (the PyTorch conv-VAE MNIST notebook's PCA,
UMAP and t-SNE views), each decoded along a line drawn in it.

A view is a (project, invert) pair (`latent_views`); its line comes from the
exploration plan's `view_line_*` options (`exploration.resolve_view_line`),
read in the view's coordinates. Every function returns its Figure, open, and
writes it to `path` when given.

  latent_pca   `latent_views.fit_pca` (the PCA of every figure)
  latent_umap  the project's ParametricUMAP, with its decoder as the inverse
  latent_tsne  scikit-learn's TSNE on at most TSNE_MAX_POINTS codes; a code
               maps to its nearest fitted code's point and back
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable, NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np
from absl import logging
from sklearn.manifold import TSNE

from latent_jax.evaluation.exploration import (ExplorationPlan, LatentContext,
                                               LineEnds, resolve_view_line)
from latent_jax.evaluation.latent_views import (nearest_code_inverse,
                                                nearest_code_project,
                                                plot_latent_view)

Decode = Callable[[np.ndarray], np.ndarray]

# t-SNE's cost grows faster than linearly with the points (Barnes-Hut: N log N
# per iteration, 500 iterations): a fixed-seed subsample of at most this many
# codes shows the clusters and keeps the figure to seconds.
TSNE_MAX_POINTS = 1000
TSNE_MAX_ITER = 500
# scikit-learn's default, lowered to (n - 1) / 3 for small samples: TSNE needs
# perplexity < n, and 3 * perplexity neighbours per point.
TSNE_PERPLEXITY = 30.0


def draw_projection_view(decode: Decode, context: LatentContext,
                         plan: ExplorationPlan,
                         project: Callable[[np.ndarray], np.ndarray],
                         invert: Callable[[np.ndarray], np.ndarray],
                         path: str | None = None, *, method: str,
                         inverse_name: str,
                         axis_names: Sequence[str] = ("dim 1", "dim 2"),
                         line: LineEnds | None = None,
                         cmap: str = "viridis") -> plt.Figure:
  """Any 2-D view (`project`, `invert`) of the codes, decoded along a line.

  `line`: (start, end, description) in view coordinates; default: the
  plan's `view_line_*` options resolved in this view.
  """
  start, end, description = line or resolve_view_line(plan.options, context,
                                                      project)
  return plot_latent_view(
      decode, context.codes, context.labels[:, 0], context.label_names[0],
      project, invert, start, end, path,
      steps=plan.options.trajectory_steps, method=method,
      line_name=description, axis_names=axis_names,
      inverse_name=inverse_name, categorical=bool(context.categorical[0]),
      cmap=cmap)


def draw_pca_view(decode: Decode, context: LatentContext,
                  plan: ExplorationPlan, path: str | None = None,
                  cmap: str = "viridis") -> plt.Figure:
  """The PCA view of the codes and the images decoded along its line."""
  pca = plan.pca
  codes = np.asarray(context.codes, np.float32)
  if codes.shape[1] == 2:
    # With D == 2 the PCA is a rotation about the mean: its inverse is exact,
    # so each point on the line decodes the very code that sits there.
    invert, inverse_name = pca.invert, "exact inverse PCA map"
  else:
    # With D > 2 the inverse linear map puts the other D - 2 components at
    # the mean, a code that may lie in none of the clusters the view shows
    # (the PyTorch conv-VAE MNIST notebook's blurry decodes with "the other
    # neurons at 0"). Snapping to the nearest projected test code decodes a
    # code that is really plotted there: the most faithful reading of what
    # the view shows. The red circles show how far each snap went.
    invert = nearest_code_inverse(codes, pca.project(codes))
    inverse_name = "nearest test code"
  ratio = pca.explained_variance_ratio
  return draw_projection_view(
      decode, context, plan, pca.project, invert, path, method="PCA",
      inverse_name=inverse_name, line=plan.view_line,
      axis_names=(f"PC1 ({100 * ratio[0]:.0f}% var)",
                  f"PC2 ({100 * ratio[1]:.0f}% var)"), cmap=cmap)


def draw_umap_view(decode: Decode, context: LatentContext,
                   plan: ExplorationPlan, path: str | None = None,
                   cmap: str = "viridis") -> plt.Figure:
  """The project's ParametricUMAP of the codes, and decodes along a line.

  The reducer is fitted on the test codes with a decoder
  (parametric_reconstruction), so a point on the line maps back to a code
  through UMAP's trained decoder (2-D -> code), then through the model's
  decoder to an image. A short schedule (n_epochs=200) keeps this figure
  cheap next to the rest of the evaluation; `latent_jax.ParametricUMAP`
  with defaults trains longer.
  """
  # Imported here: pynndescent/numba load only when this view is drawn.
  from latent_jax.umap import ParametricUMAP  # pylint: disable=import-outside-toplevel
  codes = np.asarray(context.codes, np.float32)
  reducer = ParametricUMAP(n_components=2, parametric_reconstruction=True,
                           n_epochs=200, init_epochs=100, random_state=0)
  reducer.fit(codes)

  def invert(points):
    with warnings.catch_warnings():  # line ends may leave the hull: drawn
      warnings.simplefilter("ignore")
      return reducer.inverse_transform(points)

  # Explicit x,y line ends are read in this view's coordinates; latent
  # points (class prototypes, ...) are projected by UMAP's encoder.
  return draw_projection_view(
      decode, context, plan, reducer.transform, invert, path, method="UMAP",
      inverse_name="UMAP decoder", axis_names=("UMAP 1", "UMAP 2"),
      cmap=cmap)


class TsneView(NamedTuple):
  """A t-SNE of a subsample of codes."""
  indices: np.ndarray  # [n] rows of the codes that were embedded
  points: np.ndarray   # [n, 2] their t-SNE coordinates


def fit_tsne(codes: np.ndarray, max_points: int | None = None,
             seed: int = 0) -> TsneView:
  """scikit-learn's TSNE (PCA init) of at most `max_points` (default
  TSNE_MAX_POINTS) of [N, D] codes.

  The subsample is a fixed-seed choice, sorted, so a run's figure is the
  same at every evaluation; perplexity is TSNE_PERPLEXITY or (n - 1) / 3 for
  small n (TSNE needs perplexity < n). Needs N >= 4.
  """
  codes = np.asarray(codes, np.float32)
  if codes.ndim != 2 or len(codes) < 4:
    raise ValueError(f"codes must be [N, D] with N >= 4 for a t-SNE, got "
                     f"shape {codes.shape}")
  max_points = TSNE_MAX_POINTS if max_points is None else max_points
  if max_points < 4:
    raise ValueError(f"max_points must be >= 4, got {max_points}")
  indices = np.arange(len(codes))
  if len(codes) > max_points:
    indices = np.sort(np.random.default_rng(seed).choice(
        len(codes), max_points, replace=False))
  sample = codes[indices]
  tsne = TSNE(n_components=2, perplexity=min(TSNE_PERPLEXITY,
                                             (len(sample) - 1) / 3),
              max_iter=TSNE_MAX_ITER, init="pca", random_state=seed)
  return TsneView(indices, tsne.fit_transform(sample).astype(np.float64))


def draw_tsne_view(decode: Decode, context: LatentContext,
                   plan: ExplorationPlan, path: str | None = None,
                   cmap: str = "viridis") -> plt.Figure:
  """scikit-learn's t-SNE of the codes, and the images decoded along a line.

  t-SNE embeds only the codes it was fitted on (at most TSNE_MAX_POINTS of
  them, `fit_tsne`), so both maps are lookups among those codes: a code
  projects to its nearest fitted code's point (class prototypes for the
  default line, say) and a line point decodes its nearest embedded code.
  """
  tsne = fit_tsne(context.codes)
  shown = dataclasses.replace(
      context, codes=np.asarray(context.codes, np.float32)[tsne.indices],
      labels=np.asarray(context.labels)[tsne.indices])
  project = nearest_code_project(shown.codes, tsne.points)
  invert = nearest_code_inverse(shown.codes, tsne.points)
  return draw_projection_view(
      decode, shown, plan, project, invert, path, method="t-SNE",
      inverse_name="nearest embedded code", axis_names=("t-SNE 1", "t-SNE 2"),
      cmap=cmap)


_DRAW = {"latent_pca": draw_pca_view, "latent_umap": draw_umap_view,
         "latent_tsne": draw_tsne_view}
# Figures drawn here; `registry.RUN_FIGURES` lists them with the run's others.
FIGURES = tuple(_DRAW)


def draw_view(name: str, plan: ExplorationPlan, context: LatentContext,
              decode: Decode, path: str | None = None,
              cmap: str = "viridis") -> plt.Figure | None:
  """View figure `name` (one of FIGURES); None (logged) for 1-D codes."""
  if name not in _DRAW:
    raise ValueError(f"Unknown view figure {name!r}; known: "
                     f"{list(FIGURES)}.")
  if np.shape(context.codes)[1] < 2 or plan.pca is None:
    logging.warning("Skipping %s.png: it needs two latent dims.", name)
    return None
  return _DRAW[name](decode, context, plan, path, cmap)
