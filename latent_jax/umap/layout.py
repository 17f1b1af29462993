"""UMAP's non-parametric layout, optimised on the device: the encoder's target.

Training a network with the sampled cross-entropy alone needs millions of
edge samples, each costing three network passes (umap-learn's
ParametricUMAP: minutes where UMAP takes seconds). Optimising free
coordinates with the same graph, sampler and loss costs a few hundred
FLOPs per edge instead, so we first lay the points out the way UMAP does
(spectral start, attraction along sampled edges, repulsion from uniform
negatives, UMAP's clipped gradients and linearly decaying step size), then
regress the encoder onto that layout, then fine-tune the encoder with the
cross-entropy itself (training.py). The layout is an initialisation
target, like paraDime's spectral-regression phase, taken further.

Each step processes a batch of edges at once: the updates of all edges are
computed from the same positions and summed (scatter-add), a synchronous
version of UMAP's sequential per-edge SGD.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax.umap.compile_options import compiler_options
from latent_jax.umap.sampling import (EdgeTable, draw_bits, edges_from_bits,
                                      index_from_bits)

GRADIENT_CLIP = 4.0  # UMAP clips every gradient coordinate to [-4, 4]


def rescale_to_box(coordinates: np.ndarray, size: float = 10.0) -> np.ndarray:
  """Affinely maps each coordinate to [0, size], as UMAP does to its init."""
  low, high = coordinates.min(axis=0), coordinates.max(axis=0)
  return (size * (coordinates - low) / np.where(high > low, high - low, 1.0)
          ).astype(np.float32)


def optimize_layout(positions: jax.Array, table: EdgeTable, key: jax.Array,
                    *, a: float, b: float, num_steps: jax.Array,
                    batch_size: int,
                    negative_sample_rate: int = 5,
                    repulsion_strength: float = 1.0,
                    initial_alpha: float = 1.0) -> jax.Array:
  """Optimises positions [N, d] with UMAP's gradients; returns new positions.

  num_steps is traced (a jnp.int32): one program serves any number of
  steps, so it can be compiled before the graph fixes that number.
  """
  num_points = positions.shape[0]

  def clip(value):
    return jnp.clip(value, -GRADIENT_CLIP, GRADIENT_CLIP)

  def step(i, positions):
    bits = draw_bits(jax.random.fold_in(key, i), {
        "edges": (2, batch_size),
        "negatives": (batch_size, negative_sample_rate)})
    heads, tails = edges_from_bits(table, bits["edges"])
    negatives = index_from_bits(bits["negatives"], num_points)
    alpha = initial_alpha * (1.0 - i / jnp.maximum(num_steps, 1))
    z_head, z_tail = positions[heads], positions[tails]

    # d log q / d z along positive edges (attraction).
    delta = z_head - z_tail
    sq = jnp.sum(delta * delta, axis=-1, keepdims=True)
    safe_sq = jnp.where(sq > 0, sq, 1.0)
    attract = (-2.0 * a * b * safe_sq ** (b - 1.0)) / (a * safe_sq ** b + 1.0)
    attract_step = jnp.where(sq > 0, clip(attract * delta), 0.0)

    # d log(1 - q) / d z against uniform negatives (repulsion).
    delta_n = z_head[:, None, :] - positions[negatives]
    sq_n = jnp.sum(delta_n * delta_n, axis=-1, keepdims=True)
    repel = (2.0 * repulsion_strength * b) / (
        (0.001 + sq_n) * (a * sq_n ** b + 1.0))
    repel_step = jnp.where(sq_n > 0, clip(repel * delta_n), 0.0).sum(axis=1)

    positions = positions.at[heads].add(alpha * (attract_step + repel_step))
    return positions.at[tails].add(-alpha * attract_step)

  return jax.lax.fori_loop(0, num_steps, step, positions)


@functools.cache
def layout_program():
  """`optimize_layout` jitted (batch_size, negative_sample_rate static) with
  the UMAP programs' compile options, made on first use: the options
  depend on the backend, unknown at import."""
  return jax.jit(optimize_layout,
                 static_argnames=("batch_size", "negative_sample_rate"),
                 compiler_options=compiler_options())
