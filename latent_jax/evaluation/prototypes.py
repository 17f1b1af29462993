"""Prototypes: the mean latent code of each class (or label bin).

Seed 003 decodes the mean code of each digit; seed 002's labels are
continuous generating parameters, so codes are grouped into quantile bins of
each parameter instead.
"""

from __future__ import annotations

import numpy as np


def group_prototypes(codes: np.ndarray, values: np.ndarray,
                     categorical: bool, num_bins: int = 6
                     ) -> tuple[list[str], np.ndarray]:
  """(group names [G], mean codes [G, D]) for one label column.

  Args:
    codes: [N, D] latent codes.
    values: [N] label values (class ids, or a continuous parameter).
    categorical: group by class id; otherwise by `num_bins` quantile bins.
  """
  values = np.asarray(values, np.float64)
  if categorical:
    groups = np.unique(values)
    membership = values[:, None] == groups[None]
    names = [f"{g:g}" for g in groups]
  else:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, num_bins + 1)))
    bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0,
                   len(edges) - 2)
    membership = bins[:, None] == np.arange(len(edges) - 1)[None]
    names = [f"{(lo + hi) / 2:.2g}" for lo, hi in zip(edges[:-1], edges[1:])]
  counts = membership.sum(0)
  keep = counts > 0
  means = (membership.T.astype(np.float64) @ codes) / np.maximum(counts, 1)[:, None]
  return [n for n, k in zip(names, keep) if k], means[keep]
