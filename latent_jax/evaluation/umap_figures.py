"""Figures of a 2-D embedding: the scatter and the inverse-transform grid of
the umap-learn inverse_transform tutorial.

Functions take arrays and a callable (`invert`: points -> images), so they
work with any reducer that has an inverse map, not only ParametricUMAP.
"""

from __future__ import annotations

import os
from typing import Callable

from latent_jax.evaluation.plot_utils import (MAX_POINTS, as_images,
                                              finish_figure, show_image)

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.gridspec import GridSpec


def _thin(num: int, seed: int = 0) -> np.ndarray:
  if num <= MAX_POINTS:
    return np.arange(num)
  return np.random.default_rng(seed).choice(num, MAX_POINTS, replace=False)


def _scatter(ax, embedding, labels, label_name, categorical, size=3.0):
  keep = _thin(len(embedding))
  points = embedding[keep]
  if labels is None:
    ax.scatter(points[:, 0], points[:, 1], s=size, c="0.3", linewidths=0)
    return
  values = np.asarray(labels).reshape(-1)[keep]
  cmap = "tab10" if categorical else "viridis"
  drawn = ax.scatter(points[:, 0], points[:, 1], s=size, c=values, cmap=cmap,
                     linewidths=0)
  if categorical and len(np.unique(values)) <= 20:
    for value in np.unique(values):
      centre = np.median(points[values == value], axis=0)
      ax.annotate(f"{value:g}", centre, fontsize=9, weight="bold",
                  ha="center", va="center")
  else:
    plt.colorbar(drawn, ax=ax, label=label_name, fraction=0.046)


def plot_embedding(embedding: np.ndarray,
                   path: str | os.PathLike | None = None, *,
                   labels: np.ndarray | None = None, label_name: str = "",
                   categorical: bool = True, title: str = "") -> plt.Figure:
  """2-D scatter of an embedding coloured by a label (first 2 dims)."""
  embedding = np.asarray(embedding)
  if embedding.ndim != 2 or embedding.shape[1] < 2:
    raise ValueError(f"embedding must be [N, >=2], got {embedding.shape}.")
  fig, ax = plt.subplots(figsize=(6, 6))
  _scatter(ax, embedding, labels, label_name, categorical)
  ax.set_title(title or f"embedding ({len(embedding)} points)")
  ax.set_xticks([])
  ax.set_yticks([])
  return finish_figure(fig, path)


def corner_grid(corners: np.ndarray, size: int = 10) -> np.ndarray:
  """[size * size, 2] points bilinearly between 4 corners.

  The grid of the umap-learn inverse_transform tutorial.

  corners: [4, 2] as (top-left, top-right, bottom-left, bottom-right); row
  r, column c of the grid is at (1 - y) * lerp(c0, c1, x) + y * lerp(c2, c3,
  x) with x = c / (size - 1), y = r / (size - 1).
  """
  corners = np.asarray(corners, np.float64)
  if corners.shape != (4, 2):
    raise ValueError(f"corners must be [4, 2], got {corners.shape}.")
  steps = np.linspace(0.0, 1.0, size)
  x = steps[None, :, None]
  y = steps[:, None, None]
  top = corners[0] * (1 - x) + corners[1] * x
  bottom = corners[2] * (1 - x) + corners[3] * x
  return (top * (1 - y) + bottom * y).reshape(-1, 2).astype(np.float32)


def default_corners(embedding: np.ndarray, labels: np.ndarray | None = None,
                    categorical: bool = True) -> np.ndarray:
  """Four corner points inside the embedding, spread over its classes.

  With class labels: the medians of four classes chosen far apart (the
  first the class farthest from the centre, then greedily the farthest from
  those chosen), ordered so the grid does not fold over itself. Otherwise:
  the bounding box's corners pulled 25% towards the centre.
  """
  embedding = np.asarray(embedding)[:, :2]
  centre = np.median(embedding, axis=0)
  values = None if labels is None else np.asarray(labels).reshape(-1)
  if values is not None and categorical and len(np.unique(values)) >= 4:
    medians = np.stack([np.median(embedding[values == v], axis=0)
                        for v in np.unique(values)])
    chosen = [int(np.argmax(np.linalg.norm(medians - centre, axis=1)))]
    while len(chosen) < 4:
      distance = np.min(np.linalg.norm(
          medians[:, None] - medians[chosen][None], axis=-1), axis=1)
      chosen.append(int(np.argmax(distance)))
    points = medians[chosen]
  else:
    low, high = embedding.min(axis=0), embedding.max(axis=0)
    points = np.array([[low[0], high[1]], [high[0], high[1]],
                       [low[0], low[1]], [high[0], low[1]]])
    points = centre + 0.75 * (points - centre)
  # Order by angle around their mean: TL, TR, BR, BL -> grid order TL, TR,
  # BL, BR, so the bilinear grid spans a non-self-intersecting quad.
  angle = np.arctan2(*(points - points.mean(axis=0)).T[::-1])
  ring = points[np.argsort(-angle)]  # clockwise from the top
  start = int(np.argmin(ring[:, 0] - ring[:, 1]))  # most top-left
  ring = np.roll(ring, -start, axis=0)
  return ring[[0, 1, 3, 2]].astype(np.float32)


def plot_inverse_grid(embedding: np.ndarray,
                      invert: Callable[[np.ndarray], np.ndarray],
                      path: str | os.PathLike | None = None, *,
                      labels: np.ndarray | None = None,
                      label_name: str = "", categorical: bool = True,
                      corners: np.ndarray | None = None, size: int = 10,
                      cmap: str = "gray", title: str = "") -> plt.Figure:
  """The umap-learn inverse_transform tutorial's figure: the embedding with
  grid points, next to the images those points invert to.

  Args:
    embedding: [N, 2] points to draw (e.g. the test set's embedding).
    invert: maps [size * size, 2] points to images [size * size, H, W(, C)].
    corners: [4, 2] grid corners (default: `default_corners`).
  """
  embedding = np.asarray(embedding)
  if corners is None:
    corners = default_corners(embedding, labels, categorical)
  grid = corner_grid(corners, size)
  images = as_images(invert(grid), "inverse-transformed grid")
  if len(images) != len(grid):
    raise ValueError(f"invert returned {len(images)} images for "
                     f"{len(grid)} points.")
  fig = plt.figure(figsize=(12, 6))
  layout = GridSpec(size, 2 * size, fig)
  scatter_ax = fig.add_subplot(layout[:, :size])
  _scatter(scatter_ax, embedding, labels, label_name, categorical, size=2.0)
  scatter_ax.scatter(grid[:, 0], grid[:, 1], marker="x", c="k", s=15)
  scatter_ax.set_xticks([])
  scatter_ax.set_yticks([])
  scatter_ax.set_title(title or "inverse transform of a grid of points")
  for row in range(size):
    for col in range(size):
      ax = fig.add_subplot(layout[row, size + col])
      show_image(ax, images[row * size + col], cmap)
  return finish_figure(fig, path)
