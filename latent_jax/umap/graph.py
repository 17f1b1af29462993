"""UMAP's fuzzy k-nearest-neighbour graph, built once on the host.

    data [N, D] -> kNN (indices, distances) -> per-point rho, sigma
      -> directed membership strengths -> fuzzy union -> pruned edge list

The kNN search is exact (blocked matrix products in JAX) for small data and
approximate (pynndescent's NN-descent, as umap-learn uses) above
`brute_force_max_samples`. Everything after the search is vectorised NumPy
over all points at once, and memory is O(N * n_neighbors): the graph is a
scipy.sparse matrix, never a dense N x N array.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse

# umap-learn's constants, so the weights match its graph.
SMOOTH_K_TOLERANCE = 1e-5
MIN_K_DIST_SCALE = 1e-3
# Metrics the exact JAX search computes; any other goes to pynndescent.
BRUTE_FORCE_METRICS = ("euclidean", "sqeuclidean", "cosine")
DEFAULT_BRUTE_FORCE_MAX_SAMPLES = 20_000


class Neighbors(NamedTuple):
  """Each row's k nearest rows (column 0: the row itself, for a kNN graph)."""
  indices: np.ndarray    # [N, k] int32
  distances: np.ndarray  # [N, k] float32


class Edges(NamedTuple):
  """A weighted, directed edge list: both directions of each fuzzy edge."""
  head: np.ndarray    # int32 [E]
  tail: np.ndarray    # int32 [E]
  weight: np.ndarray  # float32 [E], in (0, 1]


# --- k nearest neighbours --------------------------------------------------


@functools.partial(jax.jit, static_argnames=("k", "metric"))
def _knn_block(queries, data, data_sq_norms, k: int, metric: str):
  """Exact k smallest distances from each query row to all data rows."""
  if metric == "cosine":
    scores = queries @ data.T  # data rows are unit-normalised
    neg_top, indices = jax.lax.top_k(scores, k)
    return indices, jnp.maximum(1.0 - neg_top, 0.0)
  sq = (jnp.sum(queries * queries, axis=1, keepdims=True)
        - 2.0 * queries @ data.T + data_sq_norms[None, :])
  neg_top, indices = jax.lax.top_k(-sq, k)
  sq_dist = jnp.maximum(-neg_top, 0.0)
  return indices, sq_dist if metric == "sqeuclidean" else jnp.sqrt(sq_dist)


def _brute_force_knn(data: np.ndarray, k: int, metric: str,
                     queries: np.ndarray | None = None,
                     block_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
  """Exact kNN of `queries` (None: of the data itself) among the data rows.

  Only `_knn_block` runs on the device: normalising, norms, slicing and
  padding stay in NumPy, as each eager JAX op (even `jnp.asarray`) compiles
  a program for every new shape.
  """
  def prepare(rows):
    rows = np.asarray(rows, np.float32)
    if metric == "cosine":
      norms = np.linalg.norm(rows, axis=1, keepdims=True)
      rows = rows / np.where(norms > 0, norms, 1.0)
    return rows

  data = prepare(data)
  queries_or_data = data if queries is None else prepare(queries)
  device_data = jax.device_put(data)
  sq_norms = jax.device_put(np.einsum("ij,ij->i", data, data))
  indices, distances = [], []
  for start in range(0, len(queries_or_data), block_size):
    block = queries_or_data[start:start + block_size]
    stop = len(block)
    if stop < block_size:  # pad: one compiled shape for every block
      block = np.pad(block, ((0, block_size - stop), (0, 0)))
    idx, dist = _knn_block(block, device_data, sq_norms, k, metric)
    indices.append(np.asarray(idx)[:stop])
    distances.append(np.asarray(dist)[:stop])
  indices = np.concatenate(indices).astype(np.int32)
  distances = np.concatenate(distances).astype(np.float32)
  if queries is not None:
    return indices, distances
  # Put each point itself first (distance 0), as the approximate search and
  # umap-learn do; ties between duplicates may have put another copy there.
  return _self_first(indices, distances)


def _self_first(indices, distances):
  rows = np.arange(len(indices))
  is_self = indices == rows[:, None]
  has_self = is_self.any(axis=1)
  position = np.where(has_self, is_self.argmax(axis=1), indices.shape[1] - 1)
  # Move self (or, if missing, drop the farthest neighbour) to column 0.
  order = np.argsort(np.arange(indices.shape[1])[None, :] != position[:, None],
                     axis=1, kind="stable")
  indices = np.take_along_axis(indices, order, axis=1)
  distances = np.take_along_axis(distances, order, axis=1)
  indices[:, 0], distances[:, 0] = rows, 0.0
  return indices, distances


def nearest_neighbors(data: np.ndarray, n_neighbors: int, *,
                      metric: str = "euclidean", random_state: int = 0,
                      brute_force_max_samples: int =
                      DEFAULT_BRUTE_FORCE_MAX_SAMPLES, verbose: bool = False
                      ) -> Neighbors:
  """Each row's k nearest rows: indices [N, k], distances [N, k].

  Column 0 is the point itself. Exact for N <= `brute_force_max_samples`
  with a metric in `BRUTE_FORCE_METRICS`; otherwise pynndescent's NN-descent
  with umap-learn's settings (trees and iterations grow with N).
  """
  num = len(data)
  if num <= brute_force_max_samples and metric in BRUTE_FORCE_METRICS:
    return Neighbors(*_brute_force_knn(data, n_neighbors, metric))
  import pynndescent  # pylint: disable=g-import-not-at-top  (numba: slow)
  index = pynndescent.NNDescent(
      data, n_neighbors=n_neighbors, metric=metric,
      n_trees=min(64, 5 + int(round(num ** 0.5 / 20.0))),
      n_iters=max(5, int(round(np.log2(num)))), random_state=random_state,
      low_memory=True, verbose=verbose)
  indices, distances = index.neighbor_graph
  return Neighbors(indices.astype(np.int32), distances.astype(np.float32))


def query_neighbors(data: np.ndarray, queries: np.ndarray, n_neighbors: int,
                    *, metric: str = "euclidean", random_state: int = 0
                    ) -> Neighbors:
  """Each query's k nearest data rows: indices [M, k], distances [M, k].

  Exact (blocks of queries against every data row, on the device) for the
  metrics in `BRUTE_FORCE_METRICS`, whatever the data size: its cost is
  queries x rows x features, a matmul. Other metrics query a pynndescent
  index built on the data.
  """
  if metric in BRUTE_FORCE_METRICS:
    return Neighbors(*_brute_force_knn(data, n_neighbors, metric,
                                       queries=queries))
  import pynndescent  # pylint: disable=g-import-not-at-top  (numba: slow)
  index = pynndescent.NNDescent(data, n_neighbors=n_neighbors, metric=metric,
                                random_state=random_state, low_memory=True)
  indices, distances = index.query(queries, k=n_neighbors)
  return Neighbors(indices.astype(np.int32), distances.astype(np.float32))


# --- Fuzzy simplicial set --------------------------------------------------


def _local_rho(distances: np.ndarray, local_connectivity: float) -> np.ndarray:
  """Distance to the `local_connectivity`-th nonzero neighbour (interpolated)."""
  nonzero = np.where(distances > 0, distances, np.inf)
  nonzero.sort(axis=1)
  count = np.sum(distances > 0, axis=1)
  index = int(np.floor(local_connectivity))
  fraction = local_connectivity - index
  column = lambda j: nonzero[:, min(j, nonzero.shape[1] - 1)]
  if index > 0:
    rho = column(index - 1)
    if fraction > SMOOTH_K_TOLERANCE:
      rho = rho + fraction * (column(index) - column(index - 1))
  else:
    rho = fraction * column(0)
  # Too few nonzero neighbours: the largest one; none at all: 0.
  largest = np.where(count > 0, np.max(np.where(distances > 0, distances, 0),
                                       axis=1), 0.0)
  rho = np.where(count >= local_connectivity, rho, largest)
  return np.where(np.isfinite(rho), rho, 0.0)


def smooth_knn_dist(distances: np.ndarray, k: float, *, n_iter: int = 64,
                    local_connectivity: float = 1.0, bandwidth: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Per-point (sigma, rho) with sum_j exp(-(d_ij - rho_i)/sigma_i) = log2 k.

  The same bisection as umap-learn's, run on every point at once: a point
  stops moving once within tolerance, so results match point for point.
  """
  distances = np.asarray(distances, np.float32)
  num = len(distances)
  target = np.log2(k) * bandwidth
  rho = _local_rho(distances, local_connectivity).astype(np.float32)
  lo = np.zeros(num, np.float64)
  hi = np.full(num, np.inf)
  mid = np.ones(num, np.float64)
  active = np.ones(num, bool)
  shifted = distances[:, 1:] - rho[:, None]  # column 0 is the point itself
  for _ in range(n_iter):
    with np.errstate(over="ignore"):
      psum = np.where(shifted > 0, np.exp(-shifted / mid[:, None]), 1.0
                      ).sum(axis=1)
    active &= np.abs(psum - target) >= SMOOTH_K_TOLERANCE
    if not active.any():
      break
    too_big = active & (psum > target)
    too_small = active & ~(psum > target)
    hi = np.where(too_big, mid, hi)
    lo = np.where(too_small, mid, lo)
    mid = np.where(too_big | (too_small & np.isfinite(hi)), (lo + hi) / 2.0,
                   np.where(too_small, mid * 2.0, mid))
  sigma = mid
  # Floors keep sigma away from zero on duplicate-heavy data (as umap-learn).
  floor = np.where(rho > 0, MIN_K_DIST_SCALE * distances.mean(axis=1),
                   MIN_K_DIST_SCALE * distances.mean())
  sigma = np.maximum(sigma, floor)
  return sigma.astype(np.float32), rho


def _memberships(distances: np.ndarray, sigma: np.ndarray, rho: np.ndarray
                 ) -> np.ndarray:
  """exp(-(d - rho) / sigma), 1 within rho (or where sigma is 0): float32."""
  shifted = distances - rho[:, None]
  with np.errstate(divide="ignore", invalid="ignore"):
    values = np.where((shifted <= 0) | (sigma[:, None] == 0), 1.0,
                      np.exp(-np.maximum(shifted, 0) / sigma[:, None]))
  return values.astype(np.float32)


def query_memberships(distances: np.ndarray, k: float) -> np.ndarray:
  """[M, k] fuzzy memberships of new points to their k nearest training points.

  As umap-learn's `transform`: a new point is not in the graph, so its
  nearest neighbour earns no automatic membership of 1 (local connectivity
  0, hence rho = 0), and sigma solves the same log2(k) equation, whose sum
  skips column 0 here too (umap-learn's does).
  """
  sigma, rho = smooth_knn_dist(distances, k, local_connectivity=0.0)
  return _memberships(np.asarray(distances, np.float32), sigma, rho)


def membership_strengths(indices: np.ndarray, distances: np.ndarray,
                         sigma: np.ndarray, rho: np.ndarray
                         ) -> scipy.sparse.csr_matrix:
  """Directed fuzzy memberships exp(-(d - rho)/sigma) as a sparse [N, N]."""
  num, k = indices.shape
  rows = np.repeat(np.arange(num, dtype=np.int32), k)
  cols = indices.reshape(-1)
  values = _memberships(distances, sigma, rho).reshape(-1)
  values[cols == rows] = 0.0  # no self loops
  keep = (cols >= 0) & (values > 0)  # -1: neighbour not found
  matrix = scipy.sparse.csr_matrix(
      (values[keep], (rows[keep], cols[keep])), shape=(num, num))
  matrix.sum_duplicates()
  return matrix


def fuzzy_simplicial_set(indices: np.ndarray, distances: np.ndarray, *,
                         n_neighbors: int | None = None,
                         set_op_mix_ratio: float = 1.0,
                         local_connectivity: float = 1.0
                         ) -> scipy.sparse.csr_matrix:
  """UMAP's symmetric fuzzy graph from a kNN result (self in column 0).

  `set_op_mix_ratio` = 1 is the fuzzy union A + A^T - A * A^T (UMAP's
  default), 0 the fuzzy intersection A * A^T; values between mix the two.
  """
  if not 0.0 <= set_op_mix_ratio <= 1.0:
    raise ValueError(f"set_op_mix_ratio must be in [0, 1], got "
                     f"{set_op_mix_ratio}.")
  sigma, rho = smooth_knn_dist(distances, n_neighbors or indices.shape[1],
                               local_connectivity=local_connectivity)
  directed = membership_strengths(indices, distances, sigma, rho)
  transpose = directed.T.tocsr()
  product = directed.multiply(transpose)
  graph = (set_op_mix_ratio * (directed + transpose - product)
           + (1.0 - set_op_mix_ratio) * product)
  graph = scipy.sparse.csr_matrix(graph, dtype=np.float32)
  graph.eliminate_zeros()
  return graph


def graph_edges(graph: scipy.sparse.spmatrix, *, prune_epochs: int = 200
                ) -> Edges:
  """Edge list of `graph`, without edges too weak ever to be sampled.

  umap-learn drops weights below max / n_epochs (they would receive less
  than one update); we do the same with `prune_epochs` (its default for
  large data), which keeps the edge list, and device memory, small.
  """
  coo = scipy.sparse.coo_matrix(graph)
  keep = coo.data >= coo.data.max() / float(prune_epochs) if coo.nnz else []
  return Edges(coo.row[keep].astype(np.int32), coo.col[keep].astype(np.int32),
               coo.data[keep].astype(np.float32))
