"""Spectral coordinates of the fuzzy graph: the targets of the init phase.

The top non-trivial eigenvectors of the normalised adjacency
D^-1/2 A D^-1/2 (equivalently the bottom ones of the normalised Laplacian),
as umap-learn's spectral layout and paraDime's SpectralEmbedding use. They
are standardised per coordinate (paraDime: spectral embeddings have odd
value ranges) before the encoder regresses onto them.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse
import scipy.sparse.linalg


def spectral_coordinates(graph: scipy.sparse.spmatrix, n_components: int, *,
                         random_state: int = 0, tol: float = 1e-4
                         ) -> np.ndarray | None:
  """[N, n_components] standardised spectral coordinates, None on failure.

  Returns None (the caller then skips the phase) when the eigensolver does
  not converge, as can happen on graphs of many disconnected components.
  """
  num = graph.shape[0]
  if num <= n_components + 1:
    return None
  degree = np.asarray(graph.sum(axis=1)).ravel()
  inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
  scaling = scipy.sparse.diags(inv_sqrt)
  normalised = (scaling @ graph @ scaling).astype(np.float64)
  rng = np.random.default_rng(random_state)
  start = np.sqrt(degree) + 1e-3 * rng.standard_normal(num)
  try:
    # Largest algebraic eigenvalues of D^-1/2 A D^-1/2: the trivial
    # eigenvector (eigenvalue 1, ~sqrt(degree)) and the next n_components.
    values, vectors = scipy.sparse.linalg.eigsh(
        normalised, k=n_components + 1, which="LA", v0=start, tol=tol,
        maxiter=num * 5)
  except (scipy.sparse.linalg.ArpackError,
          scipy.sparse.linalg.ArpackNoConvergence) as error:
    warnings.warn(f"Spectral initialisation failed ({error}); training "
                  "from the network's random initialisation instead.")
    return None
  order = np.argsort(values)[::-1]
  coordinates = vectors[:, order[1:n_components + 1]] * inv_sqrt[:, None]
  std = coordinates.std(axis=0)
  return ((coordinates - coordinates.mean(axis=0))
          / np.where(std > 0, std, 1.0)).astype(np.float32)
