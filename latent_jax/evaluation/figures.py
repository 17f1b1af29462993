"""Run-level PNG figures: loss curves, images, reconstruction errors, codes.

Every function takes plain NumPy arrays and returns its matplotlib Figure,
left open so a notebook shows it; given a ``path`` it also writes one PNG
there (creating parent directories). Nothing here knows about trainers,
configs or models, so figures can be regenerated from saved arrays alone.

The latent-space exploration figures live in their own modules:
traversals, manifold grid, prototypes and the run comparison in
`latent_jax.evaluation.exploration_figures` (re-exported here, so
``figures.plot_manifold_grid(...)`` keeps working), trajectories in
`trajectories`, the PCA (and any other 2-D) views in `latent_views`; which
points they show is decided in `exploration`.

Image conventions: batches are ``[N, H, W, C]`` floats in ``[0, 1]``. ``C == 1``
is drawn through a colormap (``cmap``), ``C == 3``/``C == 4`` is drawn as is.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

# Moved to exploration_figures; kept importable from here.
from latent_jax.evaluation.exploration_figures import (  # noqa: F401
    plot_manifold_grid, plot_prototypes, plot_run_comparison, plot_traversals)
from latent_jax.evaluation.latent_views import fit_pca
from latent_jax.evaluation.plot_utils import (as_codes, as_images,
                                              finish_figure, image_grid_figure,
                                              scatter_subsample)

__all__ = [
    "plot_loss_curves", "plot_reconstructions", "plot_samples",
    "plot_reconstruction_errors", "plot_latent_codes", "plot_traversals",
    "plot_manifold_grid", "plot_prototypes", "plot_run_comparison",
]


_SPLIT_ORDER = ("train", "test", "val", "valid", "validation", "eval")
# Underscore-separated tokens marking bookkeeping metrics, not losses.
_TIME_TOKENS = {"time", "sec", "secs", "second", "seconds", "eta", "elapsed",
                "wall", "walltime", "throughput"}
_LR_KEYS = ("learning_rate", "lr")


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


def plot_loss_curves(
    records: list[dict],
    path: str | os.PathLike | None = None,
    keys: Sequence[str] | None = None,
) -> plt.Figure:
  """Plots metric curves against step, one panel per metric, one line per split.

  Args:
      records: Metric rows such as ``{"step": 100, "split": "train",
          "loss": 450, "kl": 10}``. Rows may lack keys; a row without
          ``"split"`` counts as train, one without ``"step"`` falls back to
          ``"epoch"`` and then to its index in ``records``. Values may be
          Python/NumPy/JAX scalars; non-finite values become gaps and are
          counted in the legend.
      path: Output PNG path.
      keys: Metrics to plot, in order. Default: every numeric key except
          step/epoch and timing keys (``steps_per_sec``, ``eta_sec``, ...),
          with ``learning_rate``/``lr`` in a last panel of its own.

  Returns:
      The Figure, left open for the caller (written to ``path`` as PNG
      when given).
  """
  # (x, value) pairs per key and split; dicts keep first-seen key order for
  # the panels.
  series: dict[str, dict[str, list[tuple[float, float]]]] = {}
  xname = next(
      (k for k in ("step", "epoch") if any(k in r for r in records)),
      "record index",
  )
  for i, row in enumerate(records):
    split = str(row.get("split", "train"))
    x = next((v for v in (_as_float(row.get("step")),
                          _as_float(row.get("epoch"))) if v is not None),
             float(i))
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
  fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.1 * nrows),
                           squeeze=False, layout="constrained")
  for ax in axes.flat[len(keys) :]:
    ax.set_visible(False)
  if not keys:
    axes[0, 0].set_visible(True)
    axes[0, 0].text(0.5, 0.5, "no numeric metrics", ha="center",
                    va="center", transform=axes[0, 0].transAxes)
  for ax, key in zip(axes.flat, keys):
    by_split = series.get(key, {})
    order = sorted(by_split, key=lambda s: (
        _SPLIT_ORDER.index(s) if s in _SPLIT_ORDER else 99, s))
    positive, finite_all = True, []
    for split in order:
      xs, ys = np.array(sorted(by_split[split], key=lambda p: p[0])).T
      bad = ~np.isfinite(ys)
      # inf would wreck autoscaling; NaN breaks the line instead.
      ys[bad] = np.nan
      finite_all.append(ys[~bad])
      positive &= bool(np.all(ys[~bad] > 0))
      label = split + (f" ({int(bad.sum())} non-finite)" if bad.any() else "")
      # Markers keep sparse series (e.g. periodic test evals, a single row)
      # visible.
      ax.plot(xs, ys, marker="o" if len(xs) <= 40 else None, ms=3, lw=1.3,
              label=label)
    vals = np.concatenate(finite_all) if finite_all else np.array([])
    if vals.size == 0:
      ax.text(0.5, 0.5, "no finite values", ha="center", va="center",
              transform=ax.transAxes)
    elif positive and vals.max() / vals.min() > 100:
      # Early-training spikes would otherwise flatten the curve.
      ax.set_yscale("log")
    ax.set_title(key)
    ax.set_xlabel(xname)
    ax.grid(alpha=0.3)
    if by_split:
      ax.legend(fontsize=8)
  return finish_figure(fig, path)


def plot_reconstructions(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    path: str | os.PathLike | None = None,
    max_images: int = 16,
    cmap: str = "viridis",
) -> plt.Figure:
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
      The Figure, left open for the caller (written to ``path`` as PNG
      when given).
  """
  orig = as_images(originals, "originals")
  recon = as_images(reconstructions, "reconstructions")
  if orig.shape != recon.shape:
    raise ValueError(
        f"shape mismatch: originals {orig.shape} vs reconstructions "
        f"{recon.shape}"
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
  fig, ax, rows, _ = image_grid_figure(
      cells, 2 * npairs, ncols, cmap, f"Reconstructions ({n} images)"
  )
  ax.set_yticks(rows, ["original", "recon"] * npairs, fontsize=8)
  ax.tick_params(length=0)
  return finish_figure(fig, path)


def plot_samples(
    samples: np.ndarray,
    path: str | os.PathLike | None = None,
    title: str = "Samples from the prior",
    cmap: str = "viridis",
) -> plt.Figure:
  """Shows ``[N, H, W, C]`` images in ``[0, 1]`` in a square-ish grid.

  Args:
      samples: ``[N, H, W, C]`` images.
      path: Output PNG path.
      title: Figure title.
      cmap: Colormap for single-channel images.

  Returns:
      The Figure, left open for the caller (written to ``path`` as PNG
      when given).
  """
  imgs = as_images(samples, "samples")
  n = imgs.shape[0]
  if n < 1:
    raise ValueError("need at least one sample")
  ncols = math.ceil(math.sqrt(n))
  fig, _, _, _ = image_grid_figure(
      imgs, math.ceil(n / ncols), ncols, cmap, title
  )
  return finish_figure(fig, path)


def plot_reconstruction_errors(
    errors: np.ndarray,
    path: str | os.PathLike | None = None,
    title: str = "Reconstruction error (Frobenius norm) on the test set",
) -> plt.Figure:
  """Histogram of per-image errors with the mean, median and 95th percentile.

  Args:
      errors: ``[N]`` per-image errors (e.g. the Frobenius norm of
        reconstruction minus image, as the Keras VAE-vs-AE heatmap
        notebook reports it).
      path: Output PNG path.
      title: Figure title.

  Returns:
      The Figure, left open for the caller (written to ``path`` as PNG
      when given).
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
  return finish_figure(fig, path)


def plot_latent_codes(
    codes: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    path: str | os.PathLike | None = None,
    categorical: Sequence[bool] | None = None,
) -> plt.Figure:
  """Scatters latent codes coloured by each label (one row of panels per label).

  Columns depend on the latent size D: D == 1 a strip plot of z0 against the
  label value; D == 2 the z0-z1 scatter; D == 3 the pairwise projections
  z0-z1, z0-z2, z1-z2; D > 3 the first two principal components
  (`latent_views.fit_pca` on all N points: the axes and signs of
  latent_pca.png).

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
      The Figure, left open for the caller (written to ``path`` as PNG
      when given).
  """
  z = as_codes(codes, "codes")
  n, d = z.shape
  y = np.asarray(labels, np.float64)
  y = y[:, None] if y.ndim == 1 else y
  if y.ndim != 2 or y.shape[0] != n or y.shape[1] != len(label_names):
    raise ValueError(
        f"labels must be [N, L] (or [N]) with N={n} rows like codes and "
        f"L={len(label_names)} columns like label_names, got shape "
        f"{np.shape(labels)}"
    )
  if categorical is None:
    categorical = [
        bool(np.all(np.mod(c, 1) == 0) and len(np.unique(c)) <= 20) for c in y.T
    ]
  if len(categorical) != y.shape[1]:
    raise ValueError(f"categorical must have one flag per label "
                     f"({y.shape[1]}), got {len(categorical)}")

  if d == 1:
    proj, pairs, axis_names = z, [(0, None)], [("z0", None)]
  elif d <= 3:
    proj, pairs = z, ([(0, 1)] if d == 2 else [(0, 1), (0, 2), (1, 2)])
    axis_names = [(f"z{a}", f"z{b}") for a, b in pairs]
  else:
    pca = fit_pca(z, 2)
    proj, ratio = pca.project(z), pca.explained_variance_ratio
    pairs = [(0, 1)]
    axis_names = [
        (f"PC1 ({100 * ratio[0]:.0f}% var)", f"PC2 ({100 * ratio[1]:.0f}% var)")
    ]

  idx = scatter_subsample(n)
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
  return finish_figure(fig, path)
