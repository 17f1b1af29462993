"""The figures of a latent-dim x KL-weight x seed sweep, from summary rows.

Each function takes the rows of `summary.csv` (dicts: latent_dim, kl_weight,
seed and metrics) or plain arrays and writes one PNG.
"""

from __future__ import annotations

from typing import Any, Sequence

from latent_jax.evaluation.plot_utils import finish_figure
import matplotlib.pyplot as plt
import numpy as np

METRICS = ("neg_elbo", "recon", "kl", "active_units", "latent_knn_accuracy")


def _number(value) -> float | None:
  try:
    value = float(value)
  except (TypeError, ValueError):
    return None
  return value if np.isfinite(value) else None


def _by_dim_and_weight(rows, metric):
  """{latent_dim: (kl weights sorted, [values over seeds] per weight)}."""
  table: dict[int, dict[float, list[float]]] = {}
  for row in rows:
    value = _number(row.get(metric))
    if value is not None:
      table.setdefault(int(row["latent_dim"]), {}).setdefault(
          float(row["kl_weight"]), []).append(value)
  return {dim: (sorted(cells), [cells[w] for w in sorted(cells)])
          for dim, cells in sorted(table.items())}


def _kl_axis(axis, weights) -> None:
  # KL weights usually span decades; a symlog axis also shows a weight of 0.
  if min(weights) > 0:
    axis.set_xscale("log")
  elif max(weights) > 0:
    axis.set_xscale("symlog", linthresh=min(w for w in weights if w > 0))
  axis.set_xticks(sorted(set(weights)))
  axis.set_xticklabels([f"{w:g}" for w in sorted(set(weights))])
  axis.minorticks_off()


def plot_metrics_vs_kl_weight(rows: Sequence[dict[str, Any]],
                              path: str | None = None) -> plt.Figure:
  """One panel per metric against KL weight; a line per latent dim (mean
  over seeds) with the seeds' min-max as a band."""
  metrics = [m for m in METRICS if _by_dim_and_weight(rows, m)]
  figure, axes = plt.subplots(1, len(metrics),
                              figsize=(3.6 * len(metrics), 3.4),
                              squeeze=False)
  colors = plt.get_cmap("viridis")
  dims = sorted({int(row["latent_dim"]) for row in rows})
  for axis, metric in zip(axes[0], metrics):
    all_weights = []
    for dim, (weights, values) in _by_dim_and_weight(rows, metric).items():
      color = colors(dims.index(dim) / max(len(dims) - 1, 1))
      means = [np.mean(v) for v in values]
      axis.plot(weights, means, "o-", color=color, label=f"d={dim}")
      axis.fill_between(weights, [min(v) for v in values],
                        [max(v) for v in values], color=color, alpha=0.2)
      all_weights += weights
    _kl_axis(axis, all_weights)
    axis.set_xlabel("KL weight")
    axis.set_title(metric)
  axes[0][0].legend(title="latent dim", fontsize=8)
  seeds = len({row["seed"] for row in rows})
  figure.suptitle(f"Test metrics against KL weight (mean of {seeds} seed(s);"
                  " band: min-max over seeds)")
  figure.tight_layout()
  return finish_figure(figure, path)


def plot_rate_distortion(rows: Sequence[dict[str, Any]],
                         path: str | None = None) -> plt.Figure:
  """Rate (KL, nats) against distortion (recon, nats) for every member;
  members of one latent dim joined in KL-weight order (seed means)."""
  figure, axis = plt.subplots(figsize=(6.0, 4.6))
  colors = plt.get_cmap("viridis")
  dims = sorted({int(row["latent_dim"]) for row in rows})
  rates = _by_dim_and_weight(rows, "kl")
  distortions = _by_dim_and_weight(rows, "recon")
  for dim in dims:
    if dim not in rates or dim not in distortions:
      continue
    color = colors(dims.index(dim) / max(len(dims) - 1, 1))
    weights, rate_values = rates[dim]
    _, recon_values = distortions[dim]
    for rate, recon in zip(rate_values, recon_values):
      axis.scatter(rate, recon, color=color, s=14, alpha=0.5)
    mean_rate = [np.mean(v) for v in rate_values]
    mean_recon = [np.mean(v) for v in recon_values]
    axis.plot(mean_rate, mean_recon, "o-", color=color, label=f"d={dim}")
    for weight, x, y in zip(weights, mean_rate, mean_recon):
      axis.annotate(f"{weight:g}", (x, y), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
  axis.set_xlabel("rate: KL(q(z|x) || p(z)) per image (nats)")
  axis.set_ylabel("distortion: reconstruction NLL per image (nats)")
  axis.set_title("Rate-distortion plane (labels: KL weight)")
  axis.legend(title="latent dim", fontsize=8)
  figure.tight_layout()
  return finish_figure(figure, path)


def plot_reconstructions_per_cell(
    images: np.ndarray, cells: dict[tuple[int, float, int], np.ndarray],
    path: str | None = None, cmap: str = "viridis") -> plt.Figure:
  """Test images (top row), then one row per (latent dim, KL weight) cell,
  decoded by the cell's first seed.

  Args:
    images: [n, H, W, C] test images in [0, 1].
    cells: {(latent_dim, kl_weight, seed): reconstructions [n, H, W, C]}.
  """
  first_seed = {}
  for dim, weight, seed in sorted(cells):
    first_seed.setdefault((dim, weight), seed)
  rows = [("test images", images)] + [
      (f"d={dim}, kl={weight:g}\nseed {seed}", cells[(dim, weight, seed)])
      for (dim, weight), seed in first_seed.items()]
  count = len(images)
  figure, axes = plt.subplots(len(rows), count,
                              figsize=(1.1 * count + 1.2, 1.15 * len(rows)),
                              squeeze=False)
  for axes_row, (label, batch) in zip(axes, rows):
    for axis, image in zip(axes_row, batch):
      picture = np.clip(np.asarray(image), 0.0, 1.0)
      if picture.shape[-1] == 1:
        axis.imshow(picture[..., 0], cmap=cmap, vmin=0.0, vmax=1.0)
      else:
        axis.imshow(picture)
      axis.set_xticks([])
      axis.set_yticks([])
    axes_row[0].set_ylabel(label, rotation=0, ha="right", va="center",
                           fontsize=8)
  figure.suptitle("Reconstructions per cell (posterior means)")
  return finish_figure(figure, path)
