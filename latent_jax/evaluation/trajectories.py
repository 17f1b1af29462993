"""Latent trajectories (seed 002): straight lines and rotations, decoded.

A path is a [S, D] array of codes. `plot_trajectories` shows, for each path,
the test codes (two latent dims) with the path drawn over them, next to the
images decoded along it.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

# Shared low-level helpers of the figures module (which also selects the Agg
# backend before pyplot is imported).
from latent_jax.evaluation.figures import _as_images, _save
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is set)


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
  center = np.zeros_like(start) if center is None else np.asarray(
      center, np.float32)
  first, second = plane
  offset = start - center
  angles = np.linspace(0.0, angle, steps, dtype=np.float32)
  path = np.repeat(start[None], steps, axis=0)
  cos, sin = np.cos(angles), np.sin(angles)
  path[:, first] = center[first] + cos * offset[first] - sin * offset[second]
  path[:, second] = center[second] + sin * offset[first] + cos * offset[second]
  return path


def plot_trajectories(
    decode: Callable[[np.ndarray], np.ndarray],
    codes: np.ndarray,
    colour_values: np.ndarray,
    colour_name: str,
    paths: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike,
    dims: tuple[int, int] = (0, 1),
    cmap: str = "viridis",
) -> str:
  """One row per (name, [S, D] path): latent scatter + decoded images.

  Args:
    decode: [M, D] codes -> [M, H, W, C] images in [0, 1] (called once).
    codes: [N, D] test codes; colour_values: [N] values to colour them by.
    paths: named latent paths, each [S, D].
    dims: the two latent dims shown in the scatter.
  """
  if not paths:
    raise ValueError("need at least one path")
  codes = np.asarray(codes, np.float32)
  second = dims[1] if codes.shape[1] > 1 else dims[0]
  stacked = np.concatenate([np.asarray(p, np.float32) for _, p in paths])
  images = _as_images(decode(stacked), "decoded images")
  if len(images) != len(stacked):
    raise ValueError(f"decode returned {len(images)} images for "
                     f"{len(stacked)} codes")
  steps = max(len(p) for _, p in paths)
  fig, axes = plt.subplots(len(paths), steps + 1, squeeze=False,
                           figsize=(3.2 + 1.2 * steps, 3.0 * len(paths)),
                           gridspec_kw={"width_ratios": [3] + [1] * steps,
                                        "hspace": 0.45})
  start = 0
  for row, (name, latent_path) in enumerate(paths):
    latent_path = np.asarray(latent_path, np.float32)
    ax = axes[row, 0]
    ax.scatter(codes[:, dims[0]], codes[:, second], c=colour_values, s=2,
               cmap="viridis", alpha=0.5)
    ax.plot(latent_path[:, dims[0]], latent_path[:, second], "r.-", lw=1.5)
    ax.plot(*latent_path[0, [dims[0], second]], "k^", ms=7)
    ax.set(title=f"{name} (coloured by {colour_name})",
           xlabel=f"z{dims[0]}", ylabel=f"z{second}")
    for column in range(steps):
      ax = axes[row, column + 1]
      ax.set_xticks([])
      ax.set_yticks([])
      if column < len(latent_path):
        image = images[start + column]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image,
                  cmap=cmap, vmin=0, vmax=1)
        ax.set_title(f"{column}", fontsize=7)
      else:
        ax.axis("off")
    start += len(latent_path)
  fig.suptitle("Latent trajectories: the path (red, starting at the "
               "triangle) and the images decoded along it")
  return _save(fig, path)
