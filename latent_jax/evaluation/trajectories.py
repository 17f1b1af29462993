"""Latent trajectories: straight lines and rotations, decoded (as the Keras
VAE-vs-AE heatmap notebook walks them).

A path is a [S, D] array of codes. `plot_trajectories` shows, for each path,
the test codes (two latent dims) with the path drawn over them, next to the
images decoded along it. Which points a path joins (given on the command line
or chosen from the data) is decided in `latent_jax.evaluation.exploration`.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from latent_jax.evaluation.plot_utils import (decode_batch, finish_figure,
                                              scatter_by_label,
                                              scatter_subsample, show_image)
import matplotlib.pyplot as plt


def line_path(start: np.ndarray, end: np.ndarray, steps: int = 9
              ) -> np.ndarray:
  """[steps, D] evenly spaced convex combinations from `start` to `end`."""
  weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
  start = np.asarray(start, np.float32)
  return (1.0 - weights) * start + weights * np.asarray(end, np.float32)


def rotation_path(start: np.ndarray, center: np.ndarray | None = None,
                  plane: tuple[int, int] = (0, 1), steps: int = 9,
                  angle: float = 2 * np.pi) -> np.ndarray:
  """[steps, D] rotations of `start` about `center` within two latent dims.

  The other dims keep their values; the radius in the plane is preserved.
  """
  start = np.asarray(start, np.float32)
  first, second = (int(d) for d in plane)
  if first == second or not (0 <= first < start.shape[0]
                             and 0 <= second < start.shape[0]):
    raise ValueError(f"plane must be two distinct latent dims < "
                     f"{start.shape[0]}, got {tuple(plane)}")
  center = np.zeros_like(start) if center is None else np.asarray(
      center, np.float32)
  offset = start - center
  angles = np.linspace(0.0, angle, steps, dtype=np.float32)
  path = np.repeat(start[None], steps, axis=0)
  cos, sin = np.cos(angles), np.sin(angles)
  path[:, first] = center[first] + cos * offset[first] - sin * offset[second]
  path[:, second] = center[second] + sin * offset[first] + cos * offset[second]
  return path


def path_plane(latent_path: np.ndarray) -> tuple[int, int]:
  """The two latent dims along which a [S, D] path spreads most (ascending).

  A rotation's plane, or a line's two largest direction components: the
  scatter in those dims shows the path undistorted (or least distorted).
  """
  spread = np.ptp(np.asarray(latent_path, np.float64), axis=0)
  if spread.shape[0] < 2:
    return (0, 0)
  # Stable sort: ties (e.g. a path along one dim) keep the lower dim first.
  first, second = np.argsort(-spread, kind="stable")[:2]
  return (int(min(first, second)), int(max(first, second)))


def plot_trajectories(
    decode: Callable[[np.ndarray], np.ndarray],
    codes: np.ndarray,
    colour_values: np.ndarray,
    colour_name: str,
    paths: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike | None = None,
    dims: tuple[int, int] | None = None,
    cmap: str = "viridis",
    categorical: bool = False,
) -> plt.Figure:
  """One row per (name, [S, D] path): latent scatter + decoded images.

  The scatter numbers the path's points like the images beside it, so each
  image can be found on the path (the Keras VAE-vs-AE heatmap notebook
  placed them along it).

  Args:
    decode: [M, D] codes -> [M, H, W, C] images in [0, 1] (called once with
      every path's points stacked).
    codes: [N, D] test codes; colour_values: [N] values to colour them by.
    paths: named latent paths, each [S, D].
    path: output PNG path.
    dims: the two latent dims of every scatter; None picks, per path, the
      two along which it moves most (`path_plane`).
    cmap: colormap for single-channel images.
    categorical: colour by class (legend) instead of a colorbar.

  Returns:
    The Figure, left open for the caller (written to ``path`` as PNG
    when given).
  """
  if not paths:
    raise ValueError("need at least one path")
  codes = np.asarray(codes, np.float32)
  stacked = np.concatenate([np.asarray(p, np.float32) for _, p in paths])
  if stacked.ndim != 2 or stacked.shape[1] != codes.shape[1]:
    raise ValueError(f"paths must be [S, {codes.shape[1]}] like the codes, "
                     f"got {[np.shape(p) for _, p in paths]}")
  images = decode_batch(decode, stacked)
  steps = max(len(p) for _, p in paths)
  fig, axes = plt.subplots(len(paths), steps + 1, squeeze=False,
                           figsize=(3.2 + 1.2 * steps, 3.0 * len(paths)),
                           gridspec_kw={"width_ratios": [3] + [1] * steps,
                                        "hspace": 0.45})
  shown = scatter_subsample(len(codes))
  start = 0
  for row, (name, latent_path) in enumerate(paths):
    latent_path = np.asarray(latent_path, np.float32)
    first, second = dims if dims is not None else path_plane(latent_path)
    if codes.shape[1] == 1:
      first = second = 0
    ax = axes[row, 0]
    scatter_by_label(fig, ax, codes[shown][:, [first, second]],
                     np.asarray(colour_values)[shown], colour_name,
                     categorical, size=2, alpha=0.5)
    ax.plot(latent_path[:, first], latent_path[:, second], "r.-", lw=1.5)
    ax.plot(*latent_path[0, [first, second]], "k^", ms=7)
    for index, point in enumerate(latent_path):
      ax.annotate(str(index), point[[first, second]], fontsize=6,
                  xytext=(2, 2), textcoords="offset points")
    ax.set(xlabel=f"z{first}", ylabel=f"z{second}")
    ax.set_title(f"{name} (coloured by {colour_name})", fontsize=9)
    for column in range(steps):
      ax = axes[row, column + 1]
      if column < len(latent_path):
        show_image(ax, images[start + column], cmap)
        ax.set_title(f"{column}", fontsize=7)
      else:
        ax.axis("off")
    start += len(latent_path)
  fig.suptitle("Latent trajectories: the path (red, starting at the "
               "triangle) and the images decoded along it")
  return finish_figure(fig, path)
