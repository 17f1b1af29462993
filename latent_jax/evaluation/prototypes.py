"""Prototypes: the mean latent code of each class (or label bin).

The PyTorch conv-VAE MNIST notebook decodes the mean code of each digit; the
Keras VAE-vs-AE heatmap notebook's labels are continuous generating parameters,
so codes are grouped into quantile bins of each parameter instead.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def _quantile_bins(values: np.ndarray, num_bins: int
                   ) -> tuple[np.ndarray, np.ndarray]:
  """(edges [B + 1], bin index [N]) of `num_bins` quantile bins.

  Repeated quantiles (a label with few distinct values) merge into one bin.
  """
  edges = np.unique(np.quantile(values, np.linspace(0, 1, num_bins + 1)))
  if len(edges) == 1:  # a constant label: one bin holding everything
    edges = np.array([edges[0], edges[0]])
  bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0,
                 len(edges) - 2)
  return edges, bins


class Prototypes(NamedTuple):
  """The mean code of each group of one label."""
  names: list[str]   # [G] class ids or bin centres
  codes: np.ndarray  # [G, D]


class Prototype(NamedTuple):
  """The mean code of one group."""
  name: str
  code: np.ndarray   # [D]


def group_prototypes(codes: np.ndarray, values: np.ndarray,
                     categorical: bool, num_bins: int = 6) -> Prototypes:
  """The groups' names and mean codes for one label column.

  Args:
    codes: [N, D] latent codes.
    values: [N] label values (class ids, or a continuous parameter).
    categorical: group by class id; otherwise by `num_bins` quantile bins,
      named by their centres.
  """
  values = np.asarray(values, np.float64)
  if categorical:
    groups = np.unique(values)
    membership = values[:, None] == groups[None]
    names = [f"{g:g}" for g in groups]
  else:
    edges, bins = _quantile_bins(values, num_bins)
    membership = bins[:, None] == np.arange(len(edges) - 1)[None]
    names = [f"{(lo + hi) / 2:.2g}" for lo, hi in zip(edges[:-1], edges[1:])]
  counts = membership.sum(0)
  keep = counts > 0
  means = ((membership.T.astype(np.float64) @ codes)
           / np.maximum(counts, 1)[:, None])
  return Prototypes([n for n, k in zip(names, keep) if k], means[keep])


def prototype_for_value(codes: np.ndarray, values: np.ndarray,
                        categorical: bool, value: float, num_bins: int = 6
                        ) -> Prototype:
  """The name and mean code of the class or bin that holds `value`.

  The same groups as `group_prototypes`: a class id must occur in `values`;
  a continuous value picks the quantile bin it falls in and must lie within
  the range of `values`.

  Raises:
    ValueError: the class does not occur, or the value is out of range;
      the message lists what is available.
  """
  values = np.asarray(values, np.float64)
  codes = np.asarray(codes, np.float64)
  if categorical:
    classes = np.unique(values)
    if value not in classes:
      shown = ", ".join(f"{c:g}" for c in classes[:30])
      raise ValueError(f"no test image has the class {value:g}; classes: "
                       f"{shown}{' ...' if len(classes) > 30 else ''}")
    return Prototype(f"{value:g}", codes[values == value].mean(axis=0))
  low, high = float(values.min()), float(values.max())
  if not low <= value <= high:
    raise ValueError(f"{value:g} is outside the test labels' range "
                     f"[{low:.3g}, {high:.3g}]")
  edges, bins = _quantile_bins(values, num_bins)
  wanted = int(np.clip(np.searchsorted(edges, value, side="right") - 1, 0,
                       len(edges) - 2))
  lo, hi = edges[wanted], edges[wanted + 1]
  return Prototype(f"{(lo + hi) / 2:.2g}",
                   codes[bins == wanted].mean(axis=0))
