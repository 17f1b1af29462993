"""A fixed PCA projection in front of an MLP encoder.

High-dimensional inputs (784 pixels) make the encoder's first layer the
largest cost of every training step, while a few dozen principal components
keep nearly all of the structure the kNN graph sees (the usual UMAP practice
of PCA to ~50 dimensions). The projection is fitted once on the training
data and stays fixed: the encoder sees `(x - mean) @ components`; the kNN
graph, the decoder's targets and the inverse transform stay in input space.
It makes the encoder's first layer cheap at equal embedding quality
(docs/benchmarks.md, `python -m experiments.benchmark umap`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
import threadpoolctl


class InputProjection(NamedTuple):
  mean: np.ndarray        # float32 [D]
  components: np.ndarray  # float32 [D, p], orthonormal columns


def fit_projection(flat: np.ndarray, num_components: int,
                   block_rows: int = 65536) -> InputProjection:
  """Top `num_components` principal axes of `flat` [N, D].

  From the D x D covariance (accumulated over row blocks, so memory stays
  O(D^2 + block * D) for any N) and a float64 eigendecomposition. On the
  host with NumPy's BLAS: a one-off product, not worth an XLA compilation,
  which costs more than the product itself.
  """
  flat = np.asarray(flat, np.float32)
  mean = flat.mean(axis=0, dtype=np.float64).astype(np.float32)
  covariance = np.zeros((flat.shape[1], flat.shape[1]), np.float64)
  for start in range(0, len(flat), block_rows):
    block = flat[start:start + block_rows] - mean
    covariance += block.T @ block  # float32 product, float64 sum of blocks
  # One BLAS thread: the fit compiles its XLA programs on the other cores
  # meanwhile, and OpenBLAS's threads then contend for them (seconds
  # instead of a tenth of one for 784 x 784).
  with threadpoolctl.threadpool_limits(1):
    _, vectors = np.linalg.eigh(covariance)
  components = vectors[:, ::-1][:, :num_components]  # largest first
  return InputProjection(mean, np.ascontiguousarray(components, np.float32))


def project(projection: InputProjection | None, inputs: jax.Array
            ) -> jax.Array:
  """[B, ...] inputs -> [B, p] (or the inputs unchanged without one).

  NumPy in, NumPy out (the training set, projected once on the host);
  inside a jitted function it is part of the program.
  """
  if projection is None:
    return inputs
  flat = inputs.reshape(inputs.shape[0], -1)
  return (flat - projection.mean) @ projection.components
