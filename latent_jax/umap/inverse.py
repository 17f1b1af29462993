"""Inverse transform without a decoder: interpolate between training points.

The umap-learn inverse_transform tutorial's method (umap-learn's
`inverse_transform`, without its per-point optimisation): for a point in the embedding, find the Delaunay simplex of
the training embedding that contains it, gather the training points nearest
to the simplex's vertices, weight each by UMAP's low-dimensional similarity
to the point, 1 / (1 + a d^(2b)), and return the weighted average of their
data. Outside the convex hull of the embedding the result degrades (it snaps
to the nearest training points), so such points get a warning.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import scipy.spatial

# Qhull's Delaunay grows exponentially with dimension; above this, the hull
# test and simplex lookup use nearest neighbours only.
MAX_DELAUNAY_DIM = 4


@functools.lru_cache(maxsize=4)
def _delaunay(embedding_bytes: bytes, shape: tuple[int, int]
              ) -> scipy.spatial.Delaunay:
  embedding = np.frombuffer(embedding_bytes, np.float32).reshape(shape)
  return scipy.spatial.Delaunay(embedding)


def _triangulation(embedding: np.ndarray) -> scipy.spatial.Delaunay | None:
  embedding = np.ascontiguousarray(embedding, np.float32)
  if not 2 <= embedding.shape[1] <= MAX_DELAUNAY_DIM:
    return None
  return _delaunay(embedding.tobytes(), embedding.shape)


def outside_hull(embedding: np.ndarray, points: np.ndarray) -> np.ndarray:
  """Boolean [n]: which points lie outside the convex hull of `embedding`."""
  triangulation = _triangulation(embedding)
  if triangulation is None:  # 1-D or high-D: the bounding box instead
    low, high = embedding.min(axis=0), embedding.max(axis=0)
    return np.any((points < low) | (points > high), axis=1)
  return triangulation.find_simplex(points) < 0


def warn_outside_hull(embedding: np.ndarray, points: np.ndarray) -> None:
  outside = outside_hull(embedding, points)
  if outside.any():
    warnings.warn(
        f"{int(outside.sum())} of {len(points)} points lie outside the convex "
        "hull of the training embedding; their inverse transforms are "
        "unreliable (they snap towards the nearest training points).",
        stacklevel=3)


def interpolate(embedding: np.ndarray, data: np.ndarray, points: np.ndarray,
                *, a: float, b: float, n_neighbors: int = 15,
                chunk_size: int = 1024) -> np.ndarray:
  """Data-space estimates [n, *data.shape[1:]] for embedding `points`.

  Args:
    embedding: [N, d] training embedding.
    data: [N, ...] training data in the same order.
    points: [n, d] points to invert.
    a, b: the similarity curve's parameters.
    n_neighbors: training points gathered around each simplex vertex.
    chunk_size: points per block (bounds memory at chunk * V * k rows).
  """
  if len(points) > chunk_size:
    return np.concatenate([
        interpolate(embedding, data, points[i:i + chunk_size], a=a, b=b,
                    n_neighbors=n_neighbors, chunk_size=chunk_size)
        for i in range(0, len(points), chunk_size)])
  tree = scipy.spatial.cKDTree(embedding)
  k = min(n_neighbors, len(embedding))
  triangulation = _triangulation(embedding)
  if triangulation is not None:
    simplex = triangulation.find_simplex(points)
    vertices = triangulation.simplices[np.maximum(simplex, 0)]  # [n, d + 1]
    # Outside the hull there is no simplex: use the nearest training point.
    nearest = tree.query(points, k=1)[1]
    vertices = np.where((simplex >= 0)[:, None], vertices, nearest[:, None])
  else:
    vertices = tree.query(points, k=1)[1][:, None]
  # The neighbourhoods of the vertices, in the embedding: [n, V * k].
  _, around = tree.query(embedding[vertices.reshape(-1)], k=k)
  candidates = around.reshape(len(points), -1)
  offsets = embedding[candidates] - points[:, None, :]
  sq_dist = np.sum(offsets * offsets, axis=-1)
  weights = 1.0 / (1.0 + a * np.power(sq_dist, b))
  # A candidate repeated across vertices counts once.
  order = np.sort(candidates, axis=1)
  repeated = np.zeros_like(candidates, bool)
  repeated_sorted = np.concatenate(
      [np.zeros((len(points), 1), bool), order[:, 1:] == order[:, :-1]],
      axis=1)
  ranks = np.argsort(candidates, axis=1, kind="stable")
  np.put_along_axis(repeated, ranks, repeated_sorted, axis=1)
  weights = np.where(repeated, 0.0, weights)
  weights /= weights.sum(axis=1, keepdims=True)
  flat = data.reshape(len(data), -1)
  estimate = np.einsum("nk,nkf->nf", weights, flat[candidates])
  return estimate.reshape(len(points), *data.shape[1:]).astype(np.float32)
