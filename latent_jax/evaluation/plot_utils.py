"""Helpers shared by the figure modules: finishing (and saving) a figure,
array checks, tiling, and the one colour-map rule for images (`image_cmap`).

Every figure function ends with `finish_figure`: it returns its matplotlib
Figure, open, so a notebook shows it, and writes a PNG only when given a
path. No module here selects a backend: a notebook keeps its inline one and
the command-line entry points (experiments/) select Agg for headless runs.
Callers that only save close the figure themselves (the registry's draw
path does), so long runs do not leak figures.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple

import matplotlib.pyplot as plt
import numpy as np

DPI = 110
MAX_POINTS = 5000  # scatter plots get unreadable (and slow) beyond this
# Single-channel images at least this many pixels high are drawn in colour.
COLOUR_MIN_HEIGHT = 32


def image_cmap(images: np.ndarray) -> str:
  """The colour map for single-channel ``[N, H, W, C]`` images.

  Rule: "viridis" if the images are at least ``COLOUR_MIN_HEIGHT`` pixels
  high (``H >= 32``), else "gray". Why: the project's small images are
  digits, which read best as ink on paper, and its large ones are density
  heatmaps, whose levels a perceptual colour map shows better than gray.
  """
  return "viridis" if np.shape(images)[1] >= COLOUR_MIN_HEIGHT else "gray"


def finish_figure(fig: plt.Figure, path: str | os.PathLike | None
                  ) -> plt.Figure:
  """Writes ``fig`` as PNG to ``path`` unless it is None; returns it open.

  The caller owns the returned figure: a notebook shows it, a script that
  only saves closes it (``plt.close(fig)``). A failed save closes it.
  """
  if path is not None:
    try:
      path = os.fspath(path)
      if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
      fig.savefig(path, dpi=DPI, format="png", bbox_inches="tight",
                  pad_inches=0.1)
    except BaseException:
      plt.close(fig)
      raise
  return fig


def as_codes(codes: np.ndarray, name: str = "codes") -> np.ndarray:
  """float64 ``[N, D]`` with N >= 1; ValueError naming ``name`` otherwise."""
  arr = np.asarray(codes, np.float64)
  if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
    raise ValueError(f"{name} must be [N, D] (one row per point, N, D >= 1), "
                     f"got shape {arr.shape}")
  return arr


def as_values(values: np.ndarray, count: int, name: str,
              of: str = "codes") -> np.ndarray:
  """``[N]`` values, one per point; ValueError naming ``name`` otherwise."""
  arr = np.asarray(values)
  if arr.ndim != 1 or len(arr) != count:
    raise ValueError(f"{name} must be [N] with one value per row of {of} "
                     f"(N={count}), got shape {arr.shape}")
  return arr


def as_images(images: np.ndarray, name: str = "images") -> np.ndarray:
  """float32 ``[N, H, W, C]`` in ``[0, 1]``; ``[N, H, W]`` gains a channel."""
  arr = np.asarray(images, dtype=np.float32)
  if arr.ndim == 3:
    arr = arr[..., None]
  if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
    raise ValueError(
        f"{name} must be [N, H, W, C] with C in (1, 3, 4), got shape "
        f"{arr.shape}"
    )
  return np.clip(arr, 0.0, 1.0)


def decode_batch(
    decode: Callable[[np.ndarray], np.ndarray], codes: np.ndarray
) -> np.ndarray:
  """Runs the one batched decode call; checks it gave one image per code."""
  imgs = as_images(decode(codes), "decoded images")
  if imgs.shape[0] != codes.shape[0]:
    raise ValueError(
        f"decode returned {imgs.shape[0]} images for {codes.shape[0]} codes"
    )
  return imgs


def show_image(ax: plt.Axes, image: np.ndarray, cmap: str) -> None:
  """Draws one ``[H, W, C]`` image in ``[0, 1]`` on a tick-less axis."""
  ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap=cmap,
            vmin=0, vmax=1)
  ax.set_xticks([])
  ax.set_yticks([])


class Tiled(NamedTuple):
  """Images tiled into one canvas."""
  canvas: np.ndarray  # [R, S] for one channel, else [R, S, C]
  pad: int            # pixels between cells (tick labels sit at centres)


class ImageGrid(NamedTuple):
  """A tiled grid drawn on a new figure."""
  fig: plt.Figure
  ax: plt.Axes
  row_centres: np.ndarray  # [nrows] in pixels
  col_centres: np.ndarray  # [ncols] in pixels


def tile_images(images: np.ndarray, nrows: int, ncols: int) -> Tiled:
  """Tiles ``[N, H, W, C]`` images row-major into one canvas.

  One canvas is one fast ``imshow`` instead of one per image.

  Gaps and empty cells are NaN for C == 1 (drawn as the colormap's white
  "bad" colour) and white (ones) otherwise.

  """
  n, h, w, c = images.shape
  pad = max(1, min(h, w) // 16)
  fill = np.nan if c == 1 else 1.0
  canvas = np.full(
      (nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), fill, np.float32
  )
  for i in range(min(n, nrows * ncols)):
    r, q = divmod(i, ncols)
    y, x = pad + r * (h + pad), pad + q * (w + pad)
    canvas[y : y + h, x : x + w] = images[i]
  return Tiled(canvas[..., 0] if c == 1 else canvas, pad)


def image_grid_figure(images: np.ndarray, nrows: int, ncols: int,
                      cmap: str, title: str) -> ImageGrid:
  """Draws a tiled grid on a new figure; cell centres in pixels."""
  canvas, pad = tile_images(images, nrows, ncols)
  h, w = images.shape[1:3]
  # A fixed cell size in inches, capped so huge grids stay a sane size.
  cell = min(0.8, 13.0 / ncols, 13.0 / nrows)
  fig = plt.figure(figsize=(ncols * cell + 1.4, nrows * cell * h / w + 0.9))
  ax = fig.add_subplot(1, 1, 1)
  kw = {}
  if canvas.ndim == 2:
    kw = dict(
        cmap=plt.get_cmap(cmap).with_extremes(bad="white"), vmin=0.0, vmax=1.0
    )
  ax.imshow(canvas, interpolation="nearest", **kw)
  ax.set_frame_on(False)
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_title(title)
  rows = pad + np.arange(nrows) * (h + pad) + (h - 1) / 2
  cols = pad + np.arange(ncols) * (w + pad) + (w - 1) / 2
  return ImageGrid(fig, ax, rows, cols)


def scatter_subsample(n: int) -> np.ndarray:
  """Indices of at most ``MAX_POINTS`` of ``n`` points in a fixed random order.

  The fixed-seed permutation both subsamples deterministically and shuffles
  the draw order, so no class is systematically painted over by another.
  """
  return np.random.default_rng(0).permutation(n)[:MAX_POINTS]


def scatter_by_label(fig: plt.Figure, ax: plt.Axes, points: np.ndarray,
                     values: np.ndarray, name: str, categorical: bool,
                     size: float = 3, alpha: float = 0.6,
                     cax: plt.Axes | None = None) -> None:
  """Scatters [N, 2] points coloured by `values`.

  Classes get discrete colours and a legend; a continuous label a colormap
  and a colorbar (drawn in `cax` when given, else beside `ax`).
  """
  values = np.asarray(values)
  if categorical:
    classes, index = np.unique(values, return_inverse=True)
    palette = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    ax.scatter(points[:, 0], points[:, 1], c=palette(index % palette.N),
               s=size, alpha=alpha, linewidths=0)
    ax.legend(handles=[
        plt.Line2D([], [], ls="", marker="o", color=palette(i % palette.N),
                   label=f"{value:g}") for i, value in enumerate(classes)],
              title=name, fontsize=6, title_fontsize=7, markerscale=0.8)
    if cax is not None:
      cax.set_axis_off()
  else:
    scatter = ax.scatter(points[:, 0], points[:, 1], c=values, s=size,
                         cmap="viridis", alpha=alpha, linewidths=0)
    if cax is not None:
      fig.colorbar(scatter, cax=cax, label=name)
    else:
      fig.colorbar(scatter, ax=ax, label=name, fraction=0.046)
