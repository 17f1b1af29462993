"""Holes in a latent space: decode where no data lives, measure how far off.

The Keras VAE-vs-AE heatmap notebook observed that an AE's latent space has
gaps where decoding fails, while a VAE's is dense. `gap_distances` quantifies
it: draw codes uniformly in the bounding box of the test codes, decode them,
and measure each decoded image's Euclidean (Frobenius) distance to its nearest
training image. A dense latent space decodes everywhere to something data-like
(small distances); a gapped one decodes its holes to images unlike any data.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

CHUNK = 512  # decoded images compared with all training images per call


@jax.jit
def _nearest_sq_distances(queries: jax.Array, references: jax.Array,
                          reference_sq_norms: jax.Array) -> jax.Array:
  # |q - r|^2 = |q|^2 + |r|^2 - 2 q.r, as one matmul on the device.
  cross = queries @ references.T
  sq = (jnp.sum(queries**2, axis=1, keepdims=True) + reference_sq_norms[None]
        - 2.0 * cross)
  return jnp.maximum(jnp.min(sq, axis=1), 0.0)


def nearest_distances(queries: np.ndarray, references: np.ndarray
                      ) -> np.ndarray:
  """[P] Euclidean distance from each of P queries to its nearest reference.

  Args:
    queries: [P, ...]; references: [N, ...] with the same trailing shape.
  """
  references = jnp.asarray(references, jnp.float32).reshape(
      len(references), -1)
  reference_sq_norms = jnp.sum(references**2, axis=1)
  queries = np.asarray(queries, np.float32).reshape(len(queries), -1)
  out = [_nearest_sq_distances(jnp.asarray(queries[i:i + CHUNK]), references,
                               reference_sq_norms)
         for i in range(0, len(queries), CHUNK)]
  return np.sqrt(np.asarray(jnp.concatenate(out)))


def gap_distances(decode: Callable[[np.ndarray], np.ndarray],
                  test_codes: np.ndarray, train_images: np.ndarray,
                  num_points: int = 1000, seed: int = 0) -> np.ndarray:
  """[num_points] distances of decoded uniform codes to the training images.

  Args:
    decode: [M, D] codes -> [M, H, W, C] images (the decoder's mean).
    test_codes: [N, D] codes of the test images (define the bounding box).
    train_images: [K, H, W, C] images to compare with.
  """
  low, high = test_codes.min(axis=0), test_codes.max(axis=0)
  codes = np.random.default_rng(seed).uniform(
      low, high, (num_points, test_codes.shape[1])).astype(np.float32)
  decoded = np.concatenate([np.asarray(decode(codes[i:i + CHUNK]))
                            for i in range(0, num_points, CHUNK)])
  return nearest_distances(decoded, train_images)


def gap_summary(distances: np.ndarray) -> dict[str, float]:
  return {"gap_distance_mean": float(np.mean(distances)),
          "gap_distance_p95": float(np.percentile(distances, 95))}
