"""Latent-space exploration figures: traversals, manifold grids, prototypes
and the side-by-side comparison of runs, as the Keras VAE-vs-AE heatmap,
PyTorch conv-VAE MNIST and Keras MLP-autoencoder notebooks draw them.

Like `figures`, every function takes arrays and, where it decodes, a callable
``decode(codes [M, D]) -> images [M, H, W, C]`` in ``[0, 1]`` that it calls
exactly once; it returns its Figure, open, and writes one PNG to ``path``
when given.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Sequence

from latent_jax.evaluation.latent_views import fit_pca
from latent_jax.evaluation.plot_utils import (as_codes, as_images,
                                              as_values, decode_batch,
                                              image_grid_figure, finish_figure,
                                              scatter_by_label, show_image,
                                              tile_images)
import matplotlib.pyplot as plt
import numpy as np


def _sweep_codes(
    base_code: np.ndarray, scales, span: float, steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Validates traversal inputs.

  Returns:
      ``(base [D], scales [D], offsets [steps])``.
  """
  base = np.asarray(base_code, dtype=np.float32).reshape(-1)
  d = base.shape[0]
  sc = (
      np.ones(d, np.float32)
      if scales is None
      else np.broadcast_to(np.asarray(scales, np.float32).reshape(-1), (d,))
  )
  if steps < 1:
    raise ValueError(f"steps must be >= 1, got {steps}")
  offsets = np.linspace(-span, span, steps).astype(np.float32)
  return base, np.array(sc, np.float32), offsets


def _fmt(x: float) -> str:
  return f"{x:+.2g}" if x != 0 else "0"


def plot_run_comparison(
    names: Sequence[str],
    codes: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    label_name: str,
    errors: Sequence[np.ndarray],
    grid_images: Sequence[np.ndarray],
    path: str | os.PathLike | None = None,
    cmap: str = "viridis",
    axis_names: Sequence[tuple[str, str] | None] | None = None,
    grid_titles: Sequence[str] | None = None,
    categorical: bool = False,
) -> plt.Figure:
  """Runs side by side: one column per run, three rows.

  Row 1: test codes (first two dims, or for more the first two principal
  components of `latent_views.fit_pca`, as in latent_codes.png) coloured by
  `label_name`; row 2: histogram of per-image reconstruction
  errors (shared bins); row 3: images decoded from the same latent grid. A
  baseline such as PCA's 2-D projection of the images (the Keras
  MLP-autoencoder notebook's) is one more column: its projections as codes, its
  reconstruction errors, its inverse map of a grid as the decoded images.

  Args:
      names: ``R`` run names.
      codes: ``R`` arrays ``[N_r, D_r]``; labels: ``R`` arrays ``[N_r]``.
      errors: ``R`` arrays ``[N_r]`` of per-image errors.
      grid_images: ``R`` arrays ``[G*G, H, W, C]`` decoded from one grid.
      path: Output PNG path.
      axis_names: per run, the scatter's axis names, or None for the default
        (z0/z1, or PC1/PC2 of codes with more than two dims).
      grid_titles: per run, the title of its grid panel.
      categorical: colour by class (legend) instead of a colorbar.

  Returns:
      The Figure, left open for the caller (written to ``path`` as PNG
      when given).
  """
  runs = len(names)
  if not runs or not (len(codes) == len(labels) == len(errors)
                      == len(grid_images) == runs):
    raise ValueError("need the same, non-zero number of runs in every input")
  axis_names = list(axis_names or [None] * runs)
  grid_titles = list(grid_titles or
                     ["decoded from a shared latent grid"] * runs)
  if len(axis_names) != runs or len(grid_titles) != runs:
    raise ValueError("axis_names and grid_titles need one entry per run")
  for column in range(runs):  # before any figure exists: nothing leaks
    as_values(labels[column], len(as_codes(codes[column],
                                           f"codes[{column}]")),
              f"labels[{column}]", f"codes[{column}]")
  fig, axes = plt.subplots(3, runs, figsize=(4.2 * runs, 12), squeeze=False)
  finite = np.concatenate([np.asarray(e)[np.isfinite(e)] for e in errors])
  bins = np.linspace(finite.min(), finite.max(), 40) if finite.size else 10
  for column, name in enumerate(names):
    points = np.asarray(codes[column], np.float64)
    if points.shape[1] > 2:
      points = fit_pca(points, 2).project(points)
      default_axes = ("PC1", "PC2")
    elif points.shape[1] == 2:
      default_axes = ("z0", "z1")
    else:
      points = np.concatenate([points, np.zeros_like(points)], axis=1)
      default_axes = ("z0", "")
    xlabel, ylabel = axis_names[column] or default_axes
    ax = axes[0, column]
    scatter_by_label(fig, ax, points, labels[column], label_name,
                     categorical, alpha=0.7)
    ax.set(title=name, xlabel=xlabel, ylabel=ylabel)
    ax = axes[1, column]
    ax.hist(np.asarray(errors[column]), bins=bins, color="#7a9cc6")
    ax.axvline(np.median(errors[column]), color="k", linestyle="--",
               label=f"median {np.median(errors[column]):.3g}")
    ax.set(xlabel="reconstruction error per image", ylabel="images")
    ax.legend(fontsize=8)
    grid = as_images(grid_images[column], "grid_images")
    side = math.isqrt(len(grid))
    tiled, _ = tile_images(grid[:side * side], side, side)
    ax = axes[2, column]
    ax.imshow(tiled, cmap=cmap, vmin=0, vmax=1)
    ax.set(xticks=[], yticks=[])
    ax.set_title(grid_titles[column], fontsize=9)
  fig.tight_layout()
  return finish_figure(fig, path)


def plot_prototypes(
    groups: Sequence[tuple[str, Sequence[str], np.ndarray, np.ndarray]],
    path: str | os.PathLike | None = None,
    cmap: str = "viridis",
) -> plt.Figure:
  """Decoded class/bin prototypes and a heatmap of their latent activations.

  Args:
      groups: one entry per label: ``(label_name, group_names [G],
        prototypes [G, D] mean codes, decoded [G, H, W, C] images)``.
      path: Output PNG path.

  Returns:
      The Figure, left open for the caller (written to ``path`` as PNG
      when given).
  """
  if not groups:
    raise ValueError("need at least one label group")
  width = max(len(names) for _, names, _, _ in groups)
  fig = plt.figure(figsize=(1.3 * max(width, 4), 3.6 * len(groups)))
  grid = fig.add_gridspec(2 * len(groups), width, hspace=0.8,
                          height_ratios=[1.0, 0.9] * len(groups))
  for row, (label, names, prototypes, decoded) in enumerate(groups):
    images = as_images(decoded, "decoded")
    for column in range(len(names)):
      ax = fig.add_subplot(grid[2 * row, column])
      show_image(ax, images[column], cmap)
      ax.set_title(f"{label}={names[column]}", fontsize=7)
    # The heatmap spans the whole row below the images.
    ax = fig.add_subplot(grid[2 * row + 1, :])
    activations = np.asarray(prototypes, np.float64)
    limit = np.abs(activations).max() or 1.0
    shown = ax.imshow(activations.T, cmap="coolwarm", vmin=-limit,
                      vmax=limit, aspect="auto")
    ax.set_xticks(range(len(names)), names, fontsize=7)
    ax.set_yticks(range(activations.shape[1]),
                  [f"z{i}" for i in range(activations.shape[1])], fontsize=7)
    ax.set_xlabel(f"prototype (mean code) per {label}", fontsize=8)
    fig.colorbar(shown, ax=ax, fraction=0.03)
  fig.suptitle("Prototypes: decoded mean codes and their activations")
  return finish_figure(fig, path)


def plot_traversals(
    decode: Callable[[np.ndarray], np.ndarray],
    base_code: np.ndarray,
    path: str | os.PathLike | None = None,
    span: float = 2.5,
    steps: int = 9,
    max_dims: int = 10,
    scales: np.ndarray | None = None,
    cmap: str = "viridis",
    title: str = "Latent traversals",
) -> plt.Figure:
  """Decodes one-dimension-at-a-time sweeps around ``base_code``.

  Row ``d`` shows ``z_d`` running linearly over ``base_d ± span * scale_d``
  with every other dimension held at ``base_code``.

  Args:
      decode: Maps float32 codes ``[M, D]`` to images ``[M, H, W, C]`` in
          ``[0, 1]``. Called exactly once with all rows batched
          (``M = min(D, max_dims) * steps``, row-major by dimension).
      base_code: ``[D]`` code to sweep around (e.g. zeros or a posterior mean).
      path: Output PNG path.
      span: Half-width of each sweep in units of ``scale_d``.
      steps: Images per row.
      max_dims: Only the first ``max_dims`` dimensions are shown.
      scales: ``[D]`` per-dimension scale (default 1, i.e. prior std), e.g.
          the standard deviation of the posterior means.
      cmap: Colormap for single-channel images.
      title: Figure title (e.g. naming the base code).

  Returns:
      The Figure, left open for the caller (written to ``path`` as PNG
      when given).
  """
  base, sc, offsets = _sweep_codes(base_code, scales, span, steps)
  n_dims = min(base.shape[0], max_dims)
  codes = np.repeat(base[None], n_dims * steps, axis=0)
  for dim in range(n_dims):
    codes[dim * steps : (dim + 1) * steps, dim] = base[dim] + offsets * sc[dim]
  imgs = decode_batch(decode, codes)
  fig, ax, rows, cols = image_grid_figure(
      imgs, n_dims, steps, cmap, title
  )
  custom = scales is not None
  ax.set_yticks(
      rows,
      [
          f"z{i}" + (f" (s={sc[i]:.2g})" if custom else "")
          for i in range(n_dims)
      ],
      fontsize=8,
  )
  ax.set_xticks(cols, [_fmt(o) for o in offsets], fontsize=8)
  ax.tick_params(length=0)
  ax.set_xlabel(
      "offset from base code" + (" (x scale s)" if custom else ""), fontsize=9
  )
  return finish_figure(fig, path)


def plot_manifold_grid(
    decode: Callable[[np.ndarray], np.ndarray],
    dims: tuple[int, int],
    base_code: np.ndarray,
    path: str | os.PathLike | None = None,
    span: float = 2.5,
    steps: int = 10,
    scales: np.ndarray | None = None,
    cmap: str = "viridis",
    title: str | None = None,
) -> plt.Figure:
  """Decodes a ``steps x steps`` grid over two latent dims, others fixed.

  Columns sweep ``z_{dims[0]}`` left to right (increasing); rows sweep
  ``z_{dims[1]}`` top to bottom (decreasing, so "up" is positive as in a
  scatter plot). Each sweep spans ``base ± span * scale``.

  Args:
      decode: Maps float32 codes ``[M, D]`` to images ``[M, H, W, C]``;
          called exactly once with ``M = steps**2`` codes in row-major order
          of the displayed grid.
      dims: The two (distinct) latent dimensions to vary.
      base_code: ``[D]`` values for all other dimensions.
      path: Output PNG path.
      span: Half-width of each sweep in units of the dimension's scale.
      steps: Grid size per axis.
      scales: ``[D]`` per-dimension scales (default 1).
      cmap: Colormap for single-channel images.
      title: Figure title (default names the two dims).

  Returns:
      The Figure, left open for the caller (written to ``path`` as PNG
      when given).
  """
  base, sc, offsets = _sweep_codes(base_code, scales, span, steps)
  i, j = (int(v) for v in dims)
  if i == j or not (0 <= i < base.shape[0] and 0 <= j < base.shape[0]):
    raise ValueError(
        f"dims must be two distinct indices < {base.shape[0]}, got {dims}"
    )
  xs = base[i] + offsets * sc[i]
  ys = (base[j] + offsets * sc[j])[::-1]
  codes = np.repeat(base[None], steps * steps, axis=0)
  codes[:, i] = np.tile(xs, steps)
  codes[:, j] = np.repeat(ys, steps)
  imgs = decode_batch(decode, codes)
  fig, ax, rows, cols = image_grid_figure(
      imgs, steps, steps, cmap, title or f"Decoded manifold over z{i}, z{j}"
  )
  ax.set_xticks(cols, [f"{v:.2g}" for v in xs], fontsize=8)
  ax.set_yticks(rows, [f"{v:.2g}" for v in ys], fontsize=8)
  ax.tick_params(length=0)
  ax.set_xlabel(f"z{i}")
  ax.set_ylabel(f"z{j}")
  return finish_figure(fig, path)
