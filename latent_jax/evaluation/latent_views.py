"""Low-dimensional views of latent codes and decoding along a line in them.

The PyTorch conv-VAE MNIST notebook projects a VAE's codes to 2-D (PCA, t-SNE,
UMAP), draws a line in that view and decodes the codes behind the points on the
line. Here a view is a pair of callables, so any method plugs in without
touching the figure:

  project: codes [N, D] -> view points [N, 2]
  invert:  view points [M, 2] -> codes [M, D]

PCA comes with both inverses (`LinearProjection.invert`, the exact inverse
linear map within the principal plane, and `nearest_code_inverse`, which
snaps to the nearest projected test code). The project's ParametricUMAP
(`latent_jax.umap`, API as umap-learn's) fits the same pair:

  reducer = ParametricUMAP(n_components=2,
                           parametric_reconstruction=True).fit(codes)
  plot_latent_view(decode, codes, ..., project=reducer.transform,
                   invert=reducer.inverse_transform, method="UMAP")

A method that only embeds the points it was fitted on (t-SNE) gets both
from lookups: `nearest_code_project` and `nearest_code_inverse`. The run's
views are drawn in `latent_jax.evaluation.view_figures`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.extmath import svd_flip

from latent_jax.evaluation.plot_utils import (as_codes, as_values,
                                              decode_batch, finish_figure,
                                              scatter_by_label,
                                              scatter_subsample, show_image)

Project = Callable[[np.ndarray], np.ndarray]
Invert = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class LinearProjection:
  """An affine map to K dims: ``(codes - mean) @ components.T``.

  Attributes:
    mean: [D] centre of the fitted codes.
    components: [K, D] orthonormal rows (the principal axes for PCA).
    explained_variance_ratio: [K] share of the codes' variance per axis.
  """

  mean: np.ndarray
  components: np.ndarray
  explained_variance_ratio: np.ndarray

  def project(self, codes: np.ndarray) -> np.ndarray:
    """[N, D] codes -> [N, K] coordinates along the components."""
    return (np.asarray(codes, np.float64) - self.mean) @ self.components.T

  def invert(self, points: np.ndarray) -> np.ndarray:
    """[M, K] coordinates -> [M, D] codes in the plane through the mean.

    Exact for codes in that plane (``invert(project(c)) == c``); codes off
    it come back with their other components at the mean's.
    """
    points = np.asarray(points, np.float64)
    return (self.mean + points @ self.components).astype(np.float32)


def fit_pca(codes: np.ndarray, n_components: int = 2) -> LinearProjection:
  """PCA of [N, D] points (latent codes, or flattened images): every figure's
  one PCA, so latent_codes.png, latent_pca.png and compare.png agree.

  Sign rule: scikit-learn's `svd_flip` (``u_based_decision=False``, as its
  PCA): each component's largest-magnitude loading is positive, so the same
  points always give the same picture, and the components equal
  ``sklearn.decomposition.PCA(n_components).fit(codes).components_``.
  """
  codes = np.asarray(codes, np.float64)
  if codes.ndim != 2 or codes.shape[0] < 2:
    raise ValueError(f"codes must be [N, D] with N >= 2, got {codes.shape}")
  if not 1 <= n_components <= min(codes.shape):
    raise ValueError(f"n_components must be between 1 and min(N, D) = "
                     f"{min(codes.shape)}, got {n_components}")
  mean = codes.mean(axis=0)
  centred = codes - mean
  if codes.shape[0] > codes.shape[1]:
    # Eigenvectors of the [D, D] scatter matrix: with N > D this is cheaper
    # than the SVD of the [N, D] matrix (its cost grows with D, not N).
    variance, vectors = np.linalg.eigh(centred.T @ centred)
    variance, components = variance[::-1].clip(0), vectors[:, ::-1].T
  else:
    singular, components = np.linalg.svd(centred, full_matrices=False)[1:]
    variance = singular**2
  _, components = svd_flip(None, components[:n_components].copy(),
                           u_based_decision=False)
  ratio = variance[:n_components] / max(float(variance.sum()), 1e-300)
  return LinearProjection(mean, components, ratio)


class PCABaseline(NamedTuple):
  """PCA as a linear autoencoder of images."""
  projection: LinearProjection  # of flattened images
  points: np.ndarray            # [N, K] test points
  reconstructions: np.ndarray   # [N, H, W, C], not clipped: PCA's own output


def pca_image_baseline(train_images: np.ndarray, test_images: np.ndarray,
                       n_components: int = 2, max_train: int = 10_000
                       ) -> PCABaseline:
  """PCA of flattened images as a linear autoencoder.

  The baseline of the Keras MLP-autoencoder notebook: what a non-linear
  autoencoder must beat.

  Args:
    train_images: [M, H, W, C]; PCA is fitted on the first `max_train`.
    test_images: [N, H, W, C].

  """
  train = np.asarray(train_images, np.float64)[:max_train]
  test = np.asarray(test_images, np.float64)
  pca = fit_pca(train.reshape(len(train), -1), n_components)
  points = pca.project(test.reshape(len(test), -1))
  reconstructions = pca.invert(points).reshape(test.shape)
  return PCABaseline(pca, points, reconstructions)


def nearest_code_inverse(codes: np.ndarray, projected: np.ndarray) -> Invert:
  """An `invert` that returns, for each view point, the code whose
  projection lies nearest to it (the PyTorch conv-VAE MNIST notebook's
  inverse for t-SNE/UMAP/PCA).

  Args:
    codes: [N, D] codes; projected: [N, 2] their view points.
  """
  codes = np.asarray(codes, np.float32)
  projected = np.asarray(projected, np.float64)
  if len(codes) != len(projected) or len(codes) == 0:
    raise ValueError(f"need one view point per code, got {len(projected)} "
                     f"for {len(codes)}")

  def invert(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64).reshape(-1, projected.shape[1])
    # [M, N] squared distances: M is a handful of line points, so this stays
    # small without a tree.
    distances = ((points[:, None, :] - projected[None]) ** 2).sum(-1)
    return codes[distances.argmin(axis=1)]

  return invert


def nearest_code_project(codes: np.ndarray, projected: np.ndarray
                         ) -> Project:
  """A `project` for a view fitted on `codes` only: each code maps to the
  view point of its nearest fitted code (exact for the fitted codes).

  Args:
    codes: [N, D] fitted codes; projected: [N, 2] their view points.
  """
  projected = np.asarray(projected, np.float64)
  if len(codes) != len(projected) or len(codes) == 0:
    raise ValueError(f"need one view point per code, got {len(projected)} "
                     f"for {len(codes)}")
  index = NearestNeighbors(n_neighbors=1).fit(np.asarray(codes, np.float64))

  def project(query: np.ndarray) -> np.ndarray:
    query = np.asarray(query, np.float64).reshape(-1, index.n_features_in_)
    return projected[index.kneighbors(query, return_distance=False)[:, 0]]

  return project


def view_line(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
  """[steps, 2] evenly spaced view points from `start` to `end`."""
  if steps < 2:
    raise ValueError(f"a line needs steps >= 2, got {steps}")
  weights = np.linspace(0.0, 1.0, steps)[:, None]
  return ((1 - weights) * np.asarray(start, np.float64)
          + weights * np.asarray(end, np.float64))


class ViewLine(NamedTuple):
  """A line drawn in a 2-D view of the codes, decoded."""
  points: np.ndarray  # [S, 2] view points
  codes: np.ndarray   # [S, D] their codes
  images: np.ndarray  # [S, H, W, C] decoded


def decode_view_line(decode: Callable[[np.ndarray], np.ndarray],
                     invert: Invert, start: np.ndarray, end: np.ndarray,
                     steps: int = 9) -> ViewLine:
  """`steps` view points from `start` to `end`, their codes and images."""
  points = view_line(start, end, steps)
  line_codes = np.asarray(invert(points), np.float32)
  if len(line_codes) != steps:
    raise ValueError(f"invert returned {len(line_codes)} codes for {steps} "
                     "points")
  return ViewLine(points, line_codes, decode_batch(decode, line_codes))


def plot_latent_view(
    decode: Callable[[np.ndarray], np.ndarray],
    codes: np.ndarray,
    colour_values: np.ndarray,
    colour_name: str,
    project: Project,
    invert: Invert,
    line_start: np.ndarray,
    line_end: np.ndarray,
    path: str | os.PathLike | None = None,
    *,
    steps: int = 9,
    method: str = "PCA",
    axis_names: Sequence[str] = ("dim 1", "dim 2"),
    inverse_name: str = "invert",
    line_name: str = "",
    categorical: bool = False,
    cmap: str = "viridis",
) -> plt.Figure:
  """A 2-D view of the codes with a line drawn in it, decoded along the line.

  Left: the projected codes coloured by `colour_values`, the line (black,
  numbered points) and, in red, where the decoded codes themselves project
  (`project(invert(point))`): on the line for an exact inverse, snapped to
  the nearest code for `nearest_code_inverse`, off it where an
  approximate inverse (e.g. UMAP's) misses. Right: the decoded images.

  Args:
    decode: [M, D] codes -> [M, H, W, C] images in [0, 1]; called once.
    codes: [N, D] codes (e.g. posterior means of the test set).
    colour_values: [N] label values; colour_name: their name.
    project: [N, D] -> [N, 2]; invert: [M, 2] -> [M, D].
    line_start, line_end: [2] end points of the line in view coordinates.
    path: output PNG path.
    steps: points on the line.
    method, axis_names, inverse_name, line_name: shown in the titles.
    categorical: colour by class (legend) instead of a colorbar.

  Returns:
    The Figure, left open for the caller (written to ``path`` as PNG
    when given).
  """
  codes = as_codes(codes, "codes").astype(np.float32)
  colour_values = as_values(colour_values, len(codes), "colour_values")
  view = np.asarray(project(codes), np.float64)
  if view.shape != (len(codes), 2):
    raise ValueError(f"project must map [N, D] codes to [N, 2], got "
                     f"{view.shape} for {codes.shape}")
  points, line_codes, images = decode_view_line(decode, invert, line_start,
                                                line_end, steps)
  landed = np.asarray(project(line_codes), np.float64)

  fig = plt.figure(figsize=(4.6 + 1.2 * steps, 3.8))
  # Scatter, its colorbar, a gap, then one column per decoded image.
  grid = fig.add_gridspec(1, steps + 3, wspace=0.15,
                          width_ratios=[3.5, 0.12, 0.45] + [1] * steps)
  ax = fig.add_subplot(grid[0, 0])
  shown = scatter_subsample(len(codes))
  scatter_by_label(fig, ax, view[shown], np.asarray(colour_values)[shown],
                   colour_name, categorical, alpha=0.5,
                   cax=fig.add_subplot(grid[0, 1]))
  ax.plot(*points.T, "k.-", lw=1.2)
  for (x0, y0), (x1, y1) in zip(points, landed):
    ax.plot([x0, x1], [y0, y1], color="r", lw=0.6, ls=":")
  ax.plot(*landed.T, "o", mfc="none", mec="r", ms=5,
          label=f"decoded codes ({inverse_name})")
  for index, point in enumerate(points):
    ax.annotate(str(index), point, fontsize=6, xytext=(2, 2),
                textcoords="offset points")
  ax.set(xlabel=axis_names[0], ylabel=axis_names[1])
  ax.set_title(f"{method} of {len(codes)} codes (coloured by {colour_name})",
               fontsize=9)
  for column in range(steps):
    ax = fig.add_subplot(grid[0, column + 3])
    show_image(ax, images[column], cmap)
    ax.set_title(f"{column}", fontsize=7)
  fig.suptitle(f"Decoded along a line in the {method} view (black"
               f"{': ' + line_name if line_name else ''}); red circles: "
               f"where the decoded codes ({inverse_name}) project",
               fontsize=10)
  return finish_figure(fig, path)
