"""The low-dimensional similarity curve q(d) = 1 / (1 + a d^(2b)).

UMAP picks `a, b` so that q approximates the offset exponential that
`min_dist` and `spread` describe: 1 up to `min_dist`, then
exp(-(d - min_dist) / spread). Same least-squares fit as umap-learn.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize


def find_ab_params(spread: float = 1.0, min_dist: float = 0.1
                   ) -> tuple[float, float]:
  """(a, b) of the curve closest to UMAP's target for min_dist and spread."""
  if spread <= 0:
    raise ValueError(f"spread must be > 0, got {spread}.")
  if not 0 <= min_dist <= spread:
    raise ValueError(f"min_dist must be in [0, spread={spread}], got "
                     f"{min_dist}.")
  x = np.linspace(0, spread * 3, 300)
  target = np.where(x < min_dist, 1.0, np.exp(-(x - min_dist) / spread))
  curve = lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b))
  (a, b), _ = scipy.optimize.curve_fit(curve, x, target)
  return float(a), float(b)
