"""Synthetic clusters: labelled points on a curved low-dimensional manifold
in a high-dimensional space, a test bed for embeddings with known classes.

    points, labels = synthetic_clusters(6_000, seed=0)   # [6000, 784], [6000]

Each point draws a cluster `c`, a latent position `z = centre[c] + e`
(`e ~ N(0, I)` in `manifold_dims` dimensions, centres `~ N(0, separation^2
I)`), is mapped into `dims` features by a fixed random smooth map
`sigmoid(z @ W + b)` (a curved `manifold_dims`-D sheet in [0, 1]^dims,
like pixel data), and gets isotropic Gaussian noise (`noise`). Reason: the
classes are known, local structure lives on the manifold, and the ambient
noise is what a reducer must see through, as with real images.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ClusterPoints(NamedTuple):
  """Labelled synthetic points."""
  points: np.ndarray  # [num, dims] float32
  labels: np.ndarray  # [num] int64 cluster ids in [0, num_clusters)


def _check_positive(name: str, value, integer: bool) -> None:
  kind = int if integer else float
  if isinstance(value, bool) or not isinstance(value, (int, float)) or (
      integer and not isinstance(value, int)) or not value > 0:
    raise ValueError(f"synthetic_clusters: {name} must be a positive "
                     f"{kind.__name__}, got {value!r}")


def synthetic_clusters(num: int, *, seed: int, dims: int = 784,
                       num_clusters: int = 10, manifold_dims: int = 8,
                       separation: float = 1.5, noise: float = 0.1
                       ) -> ClusterPoints:
  """`num` points [num, dims] in `num_clusters` clusters, and their labels.

  Args:
    num: number of points.
    seed: draws the centres, the map and every point (one generator).
    dims: ambient features.
    num_clusters: classes, drawn uniformly per point.
    manifold_dims: dimension of the latent sheet the clusters live on.
    separation: std of the cluster centres in units of a cluster's std
      (larger: better separated classes).
    noise: std of the ambient Gaussian noise added to every feature.

  Returns:
    `ClusterPoints(points float32 [num, dims], labels int64 [num])`.
  """
  for name, value in (("num", num), ("dims", dims),
                      ("num_clusters", num_clusters),
                      ("manifold_dims", manifold_dims)):
    _check_positive(name, value, integer=True)
  _check_positive("separation", separation, integer=False)
  if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not (
      noise >= 0):
    raise ValueError(f"synthetic_clusters: noise must be a float >= 0, got "
                     f"{noise!r}")
  rng = np.random.default_rng(seed)
  centres = rng.normal(0.0, separation, (num_clusters, manifold_dims))
  weights = rng.normal(0.0, 1.0 / np.sqrt(manifold_dims),
                       (manifold_dims, dims))
  bias = rng.normal(0.0, 0.5, dims)
  labels = rng.integers(0, num_clusters, num)
  latent = centres[labels] + rng.normal(0.0, 1.0, (num, manifold_dims))
  points = 1.0 / (1.0 + np.exp(-(latent @ weights + bias)))
  points += rng.normal(0.0, noise, points.shape)
  return ClusterPoints(points.astype(np.float32), labels.astype(np.int64))
