"""Static PNG figures for training runs: loss curves, images, latent spaces.

Every function takes plain NumPy arrays (or a Python callable that maps codes
to images), writes exactly one PNG to ``path`` (creating parent directories)
and returns the path as a string. Nothing here knows about trainers, configs
or models, so figures can be regenerated from saved arrays alone.

Image conventions: batches are ``[N, H, W, C]`` floats in ``[0, 1]``. ``C == 1``
is drawn through a colormap (``cmap``), ``C == 3``/``C == 4`` is drawn as is.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Sequence

import matplotlib

# Select the non-interactive backend before pyplot is imported so that this
# module works on headless machines and never opens windows.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = [
    "plot_loss_curves",
    "plot_reconstructions",
    "plot_samples",
    "plot_latent_codes",
    "plot_traversals",
    "plot_manifold_grid",
]

_DPI = 110
_MAX_POINTS = 5000  # scatter plots get unreadable (and slow) beyond this
_SPLIT_ORDER = ("train", "test", "val", "valid", "validation", "eval")
# Underscore-separated tokens marking bookkeeping metrics, not losses.
_TIME_TOKENS = {
    "time",
    "sec",
    "secs",
    "second",
    "seconds",
    "eta",
    "elapsed",
    "wall",
    "walltime",
    "throughput",
}
_LR_KEYS = ("learning_rate", "lr")


def _save(fig: plt.Figure, path: str | os.PathLike) -> str:
  """Saves ``fig`` as PNG, always closing it so long runs do not leak memory."""
  path = os.fspath(path)
  try:
    parent = os.path.dirname(path)
    if parent:
      os.makedirs(parent, exist_ok=True)
    fig.savefig(
        path, dpi=_DPI, format="png", bbox_inches="tight", pad_inches=0.1
    )
  finally:
    plt.close(fig)
  return path


def _as_images(images: np.ndarray, name: str = "images") -> np.ndarray:
  """Returns float32 ``[N, H, W, C]`` in ``[0, 1]``; ``[N, H, W]`` gets a channel axis."""
  arr = np.asarray(images, dtype=np.float32)
  if arr.ndim == 3:
    arr = arr[..., None]
  if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
    raise ValueError(
        f"{name} must be [N, H, W, C] with C in (1, 3, 4), got shape {arr.shape}"
    )
  return np.clip(arr, 0.0, 1.0)


def _tile(images: np.ndarray, nrows: int, ncols: int) -> tuple[np.ndarray, int]:
  """Tiles ``[N, H, W, C]`` images row-major into one canvas (one fast ``imshow``).

  Gaps and empty cells are NaN for C == 1 (drawn as the colormap's white
  "bad" colour) and 1.0 (white) otherwise.

  Returns:
      The canvas (``[R, S]`` for C == 1, ``[R, S, C]`` otherwise) and the
      padding in pixels, needed to place tick labels at cell centres.
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
  return (canvas[..., 0] if c == 1 else canvas), pad


def _image_grid_figure(
    images: np.ndarray, nrows: int, ncols: int, cmap: str, title: str
) -> tuple[plt.Figure, plt.Axes, np.ndarray, np.ndarray]:
  """Draws a tiled grid on a new figure; returns ``(fig, ax, row_centres, col_centres)`` in pixels."""
  canvas, pad = _tile(images, nrows, ncols)
  h, w = images.shape[1:3]
  # ~0.8 in per cell, but cap the figure so huge grids stay a sane size.
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
  return fig, ax, rows, cols


def _as_float(value) -> float | None:
  """Converts a scalar metric (Python, NumPy or JAX) to float, else None."""
  if value is None or isinstance(value, (bool, np.bool_, str, bytes)):
    return None
  try:
    arr = np.asarray(value)
  except Exception:  # noqa: BLE001 - arbitrary objects are just "not numeric"
    return None
  if arr.ndim != 0 or arr.dtype.kind not in "iuf":
    return None
  return float(arr)


def _is_plottable_metric(key: str) -> bool:
  """True for loss-like keys; False for step counters and timing stats."""
  if key in ("step", "epoch", "split") or key in _LR_KEYS:
    return False
  return not (set(key.lower().split("_")) & _TIME_TOKENS)


def _sweep_codes(
    base_code: np.ndarray, scales, span: float, steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Validates traversal inputs; returns ``(base [D], scales [D], offsets [steps])``."""
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


def _decode(
    decode: Callable[[np.ndarray], np.ndarray], codes: np.ndarray
) -> np.ndarray:
  """Runs the single batched decode call and checks it returned one image per code."""
  imgs = _as_images(decode(codes), "decoded images")
  if imgs.shape[0] != codes.shape[0]:
    raise ValueError(
        f"decode returned {imgs.shape[0]} images for {codes.shape[0]} codes"
    )
  return imgs


def _fmt(x: float) -> str:
  return f"{x:+.2g}" if x != 0 else "0"


def plot_loss_curves(
    records: list[dict],
    path: str | os.PathLike,
    keys: Sequence[str] | None = None,
) -> str:
  """Plots metric curves against step, one panel per metric, one line per split.

  Args:
      records: Metric rows such as ``{"step": 100, "split": "train",
          "loss": 450.2, "kl": 10.2}``. Rows may lack keys; a row without
          ``"split"`` counts as train, one without ``"step"`` falls back to
          ``"epoch"`` and then to its index in ``records``. Values may be
          Python/NumPy/JAX scalars; non-finite values become gaps and are
          counted in the legend.
      path: Output PNG path.
      keys: Metrics to plot, in order. Default: every numeric key except
          step/epoch and timing keys (``steps_per_sec``, ``eta_sec``, ...),
          with ``learning_rate``/``lr`` in a last panel of its own.

  Returns:
      ``path`` as a string.
  """
  # (x, value) pairs per key and split; dicts keep first-seen key order for the panels.
  series: dict[str, dict[str, list[tuple[float, float]]]] = {}
  xname = next(
      (k for k in ("step", "epoch") if any(k in r for r in records)),
      "record index",
  )
  for i, row in enumerate(records):
    split = str(row.get("split", "train"))
    x = next(
        (
            v
            for v in (_as_float(row.get("step")), _as_float(row.get("epoch")))
            if v is not None
        ),
        float(i),
    )
    for k, v in row.items():
      if (fv := _as_float(v)) is not None:
        series.setdefault(k, {}).setdefault(split, []).append((x, fv))
  if keys is None:
    keys = [k for k in series if _is_plottable_metric(k)] + [
        k for k in _LR_KEYS if k in series
    ]
  keys = list(keys)

  ncols = min(3, max(1, len(keys)))
  nrows = math.ceil(max(1, len(keys)) / ncols)
  fig, axes = plt.subplots(
      nrows,
      ncols,
      figsize=(4.3 * ncols, 3.1 * nrows),
      squeeze=False,
      layout="constrained",
  )
  for ax in axes.flat[len(keys) :]:
    ax.set_visible(False)
  if not keys:
    axes[0, 0].set_visible(True)
    axes[0, 0].text(
        0.5,
        0.5,
        "no numeric metrics",
        ha="center",
        va="center",
        transform=axes[0, 0].transAxes,
    )
  for ax, key in zip(axes.flat, keys):
    by_split = series.get(key, {})
    order = sorted(
        by_split,
        key=lambda s: (_SPLIT_ORDER.index(s) if s in _SPLIT_ORDER else 99, s),
    )
    positive, finite_all = True, []
    for split in order:
      xs, ys = np.array(sorted(by_split[split], key=lambda p: p[0])).T
      bad = ~np.isfinite(ys)
      ys[bad] = (
          np.nan
      )  # inf would wreck autoscaling; NaN breaks the line instead
      finite_all.append(ys[~bad])
      positive &= bool(np.all(ys[~bad] > 0))
      label = split + (f" ({int(bad.sum())} non-finite)" if bad.any() else "")
      # Markers keep sparse series (e.g. periodic test evals, a single row) visible.
      ax.plot(
          xs,
          ys,
          marker="o" if len(xs) <= 40 else None,
          ms=3,
          lw=1.3,
          label=label,
      )
    vals = np.concatenate(finite_all) if finite_all else np.array([])
    if vals.size == 0:
      ax.text(
          0.5,
          0.5,
          "no finite values",
          ha="center",
          va="center",
          transform=ax.transAxes,
      )
    elif positive and vals.max() / vals.min() > 100:
      ax.set_yscale(
          "log"
      )  # early-training spikes would otherwise flatten the curve
    ax.set_title(key)
    ax.set_xlabel(xname)
    ax.grid(alpha=0.3)
    if by_split:
      ax.legend(fontsize=8)
  return _save(fig, path)


def plot_reconstructions(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    path: str | os.PathLike,
    max_images: int = 16,
    cmap: str = "viridis",
) -> str:
  """Shows originals above their reconstructions.

  Args:
      originals: ``[N, H, W, C]`` images in ``[0, 1]``.
      reconstructions: Same shape as ``originals``.
      path: Output PNG path.
      max_images: Show the first ``min(N, max_images)`` pairs. Up to 16 pairs
          use 2 rows x n columns; more are wrapped into alternating
          original/reconstruction row pairs.
      cmap: Colormap for single-channel images.

  Returns:
      ``path`` as a string.
  """
  orig = _as_images(originals, "originals")
  recon = _as_images(reconstructions, "reconstructions")
  if orig.shape != recon.shape:
    raise ValueError(
        f"shape mismatch: originals {orig.shape} vs reconstructions {recon.shape}"
    )
  n = min(orig.shape[0], max_images)
  if n < 1:
    raise ValueError("need at least one image")
  ncols = n if n <= 16 else math.ceil(math.sqrt(2 * n))
  npairs = math.ceil(n / ncols)
  # Interleave chunks so each reconstruction sits directly below its original.
  cells = np.full(
      (2 * npairs * ncols,) + orig.shape[1:],
      np.nan if orig.shape[-1] == 1 else 1.0,
      np.float32,
  )
  for p in range(npairs):
    chunk = slice(p * ncols, min(n, (p + 1) * ncols))
    k = chunk.stop - chunk.start
    cells[2 * p * ncols : 2 * p * ncols + k] = orig[chunk]
    cells[(2 * p + 1) * ncols : (2 * p + 1) * ncols + k] = recon[chunk]
  fig, ax, rows, _ = _image_grid_figure(
      cells, 2 * npairs, ncols, cmap, f"Reconstructions ({n} images)"
  )
  ax.set_yticks(rows, ["original", "recon"] * npairs, fontsize=8)
  ax.tick_params(length=0)
  return _save(fig, path)


def plot_samples(
    samples: np.ndarray,
    path: str | os.PathLike,
    title: str = "Samples from the prior",
    cmap: str = "viridis",
) -> str:
  """Shows ``[N, H, W, C]`` images in ``[0, 1]`` in a square-ish grid.

  Args:
      samples: ``[N, H, W, C]`` images.
      path: Output PNG path.
      title: Figure title.
      cmap: Colormap for single-channel images.

  Returns:
      ``path`` as a string.
  """
  imgs = _as_images(samples, "samples")
  n = imgs.shape[0]
  if n < 1:
    raise ValueError("need at least one sample")
  ncols = math.ceil(math.sqrt(n))
  fig, _, _, _ = _image_grid_figure(
      imgs, math.ceil(n / ncols), ncols, cmap, title
  )
  return _save(fig, path)


def plot_reconstruction_errors(
    errors: np.ndarray,
    path: str | os.PathLike,
    title: str = "Reconstruction error (Frobenius norm) on the test set",
) -> str:
  """Histogram of per-image errors with the mean, median and 95th percentile.

  Args:
      errors: ``[N]`` per-image errors (e.g. the Frobenius norm of
        reconstruction minus image, as seed 002 reports it).
      path: Output PNG path.
      title: Figure title.

  Returns:
      ``path`` as a string.
  """
  errors = np.asarray(errors, np.float64).ravel()
  errors = errors[np.isfinite(errors)]
  if errors.size == 0:
    raise ValueError("need at least one finite error value")
  fig, ax = plt.subplots(figsize=(6.5, 4))
  ax.hist(errors, bins=min(60, max(10, errors.size // 20)), color="#7a9cc6")
  for value, name, style in (
      (errors.mean(), "mean", "-"),
      (np.median(errors), "median", "--"),
      (np.percentile(errors, 95), "95th percentile", ":"),
  ):
    ax.axvline(value, color="k", linestyle=style,
               label=f"{name} {value:.3g}")
  ax.set_xlabel("error per image")
  ax.set_ylabel("images")
  ax.set_title(title, fontsize=10)
  ax.legend(fontsize=8)
  return _save(fig, path)


def plot_run_comparison(
    names: Sequence[str],
    codes: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    label_name: str,
    errors: Sequence[np.ndarray],
    grid_images: Sequence[np.ndarray],
    path: str | os.PathLike,
    cmap: str = "viridis",
) -> str:
  """Runs side by side: one column per run, three rows.

  Row 1: test codes (first two dims, or the first two principal components
  for more) coloured by `label_name`; row 2: histogram of per-image
  reconstruction errors (shared bins); row 3: images decoded from the same
  latent grid.

  Args:
      names: ``R`` run names.
      codes: ``R`` arrays ``[N_r, D_r]``; labels: ``R`` arrays ``[N_r]``.
      errors: ``R`` arrays ``[N_r]`` of per-image errors.
      grid_images: ``R`` arrays ``[G*G, H, W, C]`` decoded from one grid.
      path: Output PNG path.

  Returns:
      ``path`` as a string.
  """
  runs = len(names)
  if not runs or not (len(codes) == len(labels) == len(errors)
                      == len(grid_images) == runs):
    raise ValueError("need the same, non-zero number of runs in every input")
  fig, axes = plt.subplots(3, runs, figsize=(4.2 * runs, 12), squeeze=False)
  finite = np.concatenate([np.asarray(e)[np.isfinite(e)] for e in errors])
  bins = np.linspace(finite.min(), finite.max(), 40) if finite.size else 10
  for column, name in enumerate(names):
    points = np.asarray(codes[column], np.float64)
    if points.shape[1] > 2:
      centred = points - points.mean(0)
      _, _, components = np.linalg.svd(centred, full_matrices=False)
      points, axis_names = centred @ components[:2].T, ("PC1", "PC2")
    elif points.shape[1] == 2:
      axis_names = ("z0", "z1")
    else:
      points = np.concatenate([points, np.zeros_like(points)], axis=1)
      axis_names = ("z0", "")
    ax = axes[0, column]
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels[column], s=3,
                         cmap="viridis", alpha=0.7)
    fig.colorbar(scatter, ax=ax, label=label_name, fraction=0.046)
    ax.set(title=name, xlabel=axis_names[0], ylabel=axis_names[1])
    ax = axes[1, column]
    ax.hist(np.asarray(errors[column]), bins=bins, color="#7a9cc6")
    ax.axvline(np.median(errors[column]), color="k", linestyle="--",
               label=f"median {np.median(errors[column]):.3g}")
    ax.set(xlabel="reconstruction error per image", ylabel="images")
    ax.legend(fontsize=8)
    grid = _as_images(grid_images[column], "grid_images")
    side = math.isqrt(len(grid))
    tiled, _ = _tile(grid[:side * side], side, side)
    ax = axes[2, column]
    ax.imshow(tiled, cmap=cmap, vmin=0, vmax=1)
    ax.set(title="decoded from a shared latent grid", xticks=[], yticks=[])
  fig.tight_layout()
  return _save(fig, path)


def plot_prototypes(
    groups: Sequence[tuple[str, Sequence[str], np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    cmap: str = "viridis",
) -> str:
  """Decoded class/bin prototypes and a heatmap of their latent activations.

  Args:
      groups: one entry per label: ``(label_name, group_names [G],
        prototypes [G, D] mean codes, decoded [G, H, W, C] images)``.
      path: Output PNG path.

  Returns:
      ``path`` as a string.
  """
  if not groups:
    raise ValueError("need at least one label group")
  width = max(len(names) for _, names, _, _ in groups)
  fig = plt.figure(figsize=(1.3 * max(width, 4), 3.6 * len(groups)))
  grid = fig.add_gridspec(2 * len(groups), width, hspace=0.8,
                          height_ratios=[1.0, 0.9] * len(groups))
  for row, (label, names, prototypes, decoded) in enumerate(groups):
    images = _as_images(decoded, "decoded")
    for column in range(len(names)):
      ax = fig.add_subplot(grid[2 * row, column])
      ax.set_xticks([])
      ax.set_yticks([])
      image = images[column]
      ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap=cmap,
                vmin=0, vmax=1)
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
  return _save(fig, path)


def plot_latent_codes(
    codes: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    path: str | os.PathLike,
    categorical: Sequence[bool] | None = None,
) -> str:
  """Scatters latent codes coloured by each label (one row of panels per label).

  Columns depend on the latent size D: D == 1 a strip plot of z0 against the
  label value; D == 2 the z0-z1 scatter; D == 3 the pairwise projections
  z0-z1, z0-z2, z1-z2; D > 3 the first two principal components (PCA via SVD
  of the centred codes, fitted on all N points).

  Args:
      codes: ``[N, D]`` latent codes (e.g. posterior means).
      labels: ``[N, L]`` (or ``[N]``) label values aligned with ``codes``.
      label_names: ``L`` names, used as row titles / colorbar labels.
      path: Output PNG path.
      categorical: ``L`` flags; categorical labels get discrete colours and a
          legend, continuous ones a colormap and colorbar. Default: a label
          is categorical when it is integer-valued with at most 20 distinct
          values.

  Returns:
      ``path`` as a string.
  """
  z, y = (
      np.asarray(a, np.float64).reshape(len(a), -1) for a in (codes, labels)
  )
  n, d = z.shape
  if y.shape[0] != n or y.shape[1] != len(label_names):
    raise ValueError(
        f"labels {y.shape} do not match codes {z.shape} and {len(label_names)} label names"
    )
  if categorical is None:
    categorical = [
        bool(np.all(np.mod(c, 1) == 0) and len(np.unique(c)) <= 20) for c in y.T
    ]
  if len(categorical) != y.shape[1]:
    raise ValueError("categorical must have one flag per label")

  if d == 1:
    proj, pairs, axis_names = z, [(0, None)], [("z0", None)]
  elif d <= 3:
    proj, pairs = z, ([(0, 1)] if d == 2 else [(0, 1), (0, 2), (1, 2)])
    axis_names = [(f"z{a}", f"z{b}") for a, b in pairs]
  else:
    centred = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    ratio = s**2 / max(float(np.sum(s**2)), 1e-12)
    proj = centred @ vt[:2].T
    pairs = [(0, 1)]
    axis_names = [
        (f"PC1 ({100 * ratio[0]:.0f}% var)", f"PC2 ({100 * ratio[1]:.0f}% var)")
    ]

  # A fixed-seed permutation both subsamples deterministically and shuffles
  # the draw order, so no class is systematically painted over by another.
  idx = np.random.default_rng(0).permutation(n)[:_MAX_POINTS]
  proj, y = proj[idx], y[idx]
  size = 3 if len(idx) > 2000 else 9

  nrow, ncol = y.shape[1], len(pairs)
  fig, axes = plt.subplots(
      nrow,
      ncol,
      figsize=(3.6 * ncol + 1.6, 3.2 * nrow),
      squeeze=False,
      layout="constrained",
  )
  shown = f"{len(idx)} points" if len(idx) == n else f"{len(idx)} of {n} points"
  fig.suptitle(f"Latent codes (D={d}{', PCA' if d > 3 else ''}), {shown}")
  for r, (name, is_cat) in enumerate(zip(label_names, categorical)):
    lab = y[:, r]
    if is_cat:
      classes, inv = np.unique(lab, return_inverse=True)
      cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
      colour = cmap(inv % cmap.N)
    for c, ((a, b), (xl, yl)) in enumerate(zip(pairs, axis_names)):
      ax = axes[r, c]
      xs = proj[:, a]
      if b is None:  # D == 1: strip plot, label value (or jittered class) on y
        jitter = np.random.default_rng(1).uniform(-0.25, 0.25, len(xs))
        ys = inv + jitter if is_cat else lab
        yl = name
        if is_cat:
          ax.set_yticks(np.arange(len(classes)), [f"{v:g}" for v in classes])
      else:
        ys = proj[:, b]
      if is_cat:
        ax.scatter(xs, ys, c=colour, s=size, alpha=0.7, linewidths=0)
      else:
        sc = ax.scatter(
            xs, ys, c=lab, cmap="viridis", s=size, alpha=0.7, linewidths=0
        )
      ax.set_xlabel(xl)
      ax.set_ylabel(yl)
      ax.set_title(f"coloured by {name}", fontsize=9)
    if is_cat:
      handles = [
          plt.Line2D(
              [], [], ls="", marker="o", color=cmap(i % cmap.N), label=f"{v:g}"
          )
          for i, v in enumerate(classes)
      ]
      axes[r, -1].legend(
          handles=handles,
          title=name,
          fontsize=7,
          title_fontsize=8,
          loc="center left",
          bbox_to_anchor=(1.02, 0.5),
          frameon=False,
      )
    else:
      fig.colorbar(sc, ax=list(axes[r]), label=name, shrink=0.9)
  return _save(fig, path)


def plot_traversals(
    decode: Callable[[np.ndarray], np.ndarray],
    base_code: np.ndarray,
    path: str | os.PathLike,
    span: float = 2.5,
    steps: int = 9,
    max_dims: int = 10,
    scales: np.ndarray | None = None,
    cmap: str = "viridis",
) -> str:
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

  Returns:
      ``path`` as a string.
  """
  base, sc, offsets = _sweep_codes(base_code, scales, span, steps)
  n_dims = min(base.shape[0], max_dims)
  codes = np.repeat(base[None], n_dims * steps, axis=0)
  for dim in range(n_dims):
    codes[dim * steps : (dim + 1) * steps, dim] = base[dim] + offsets * sc[dim]
  imgs = _decode(decode, codes)
  fig, ax, rows, cols = _image_grid_figure(
      imgs, n_dims, steps, cmap, "Latent traversals"
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
  return _save(fig, path)


def plot_manifold_grid(
    decode: Callable[[np.ndarray], np.ndarray],
    dims: tuple[int, int],
    base_code: np.ndarray,
    path: str | os.PathLike,
    span: float = 2.5,
    steps: int = 10,
    scales: np.ndarray | None = None,
    cmap: str = "viridis",
) -> str:
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

  Returns:
      ``path`` as a string.
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
  imgs = _decode(decode, codes)
  fig, ax, rows, cols = _image_grid_figure(
      imgs, steps, steps, cmap, f"Decoded manifold over z{i}, z{j}"
  )
  ax.set_xticks(cols, [f"{v:.2g}" for v in xs], fontsize=8)
  ax.set_yticks(rows, [f"{v:.2g}" for v in ys], fontsize=8)
  ax.tick_params(length=0)
  ax.set_xlabel(f"z{i}")
  ax.set_ylabel(f"z{j}")
  return _save(fig, path)
