"""Refining new points' coordinates against the fixed training embedding.

umap-learn's non-parametric `transform`: a new point's k nearest training
points (in input space) get fuzzy memberships, and its 2-D position is
optimised with UMAP's cross-entropy against the training embedding, which
stays fixed (attraction to those neighbours, repulsion from uniformly drawn
training points). Here it starts from the encoder's output and runs on the
device, every point at once, in one jitted loop.

Why: an encoder trained on a few thousand points generalises less well than
a kNN placement (docs/benchmarks.md). The refinement recovers that where the
training data is at hand, at the cost of a kNN search of it.

Each step takes the exact expectation over the k neighbours (k is small)
and samples `negative_sample_rate * k` uniform negatives per point; the
repulsion is weighted so that, as in UMAP's sampling, each unit of positive
membership is matched by `negative_sample_rate` negatives. Adam, with its
step decaying linearly to zero, moves every coordinate independently, so
points never interact.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from latent_jax import losses
from latent_jax.umap import graph as graph_lib
from latent_jax.umap.sampling import draw_bits, index_from_bits

# Chosen on held-out digits against fewer steps and smaller rates
# (docs/benchmarks.md); more steps added nothing.
REFINE_STEPS = 200
REFINE_LEARNING_RATE = 0.1


@functools.partial(jax.jit, static_argnames=(
    "a", "b", "num_steps", "learning_rate", "negative_sample_rate",
    "repulsion_strength"))
def refine_positions(start: jax.Array, neighbor_positions: jax.Array,
                     memberships: jax.Array, embedding: jax.Array,
                     key: jax.Array, *, a: float, b: float,
                     num_steps: int = REFINE_STEPS,
                     learning_rate: float = REFINE_LEARNING_RATE,
                     negative_sample_rate: int = 5,
                     repulsion_strength: float = 1.0) -> jax.Array:
  """Optimised coordinates [P, d] of P new points.

  Args:
    start: [P, d] initial coordinates (the encoder's output).
    neighbor_positions: [P, k, d] training-embedding coordinates of each
      point's k nearest training points.
    memberships: [P, k] their fuzzy memberships (`graph.query_memberships`).
    embedding: [N, d] the training embedding, where negatives are drawn.
    key: PRNG key for the negatives.
    a, b: the low-dimensional curve (`find_ab_params`).
    num_steps, learning_rate: Adam's schedule (linear decay to 0).
    negative_sample_rate, repulsion_strength: as in training.
  """
  num_points, k = memberships.shape
  num_negatives = negative_sample_rate * k
  # Per negative: the point's total membership * rate, spread over draws.
  negative_weight = (repulsion_strength * negative_sample_rate
                     * jnp.sum(memberships, axis=1, keepdims=True)
                     / num_negatives)

  def gradient(positions, step):
    bits = draw_bits(jax.random.fold_in(key, step),
                     {"negatives": (num_points, num_negatives)})
    negatives = embedding[index_from_bits(bits["negatives"],
                                          embedding.shape[0])]
    return refine_gradient(positions, neighbor_positions, memberships,
                           negatives, negative_weight, a=a, b=b)

  optimizer = optax.adam(optax.linear_schedule(learning_rate, 0.0,
                                               num_steps))

  def step(i, carry):
    positions, opt_state = carry
    updates, opt_state = optimizer.update(gradient(positions, i),
                                          opt_state)
    return optax.apply_updates(positions, updates), opt_state

  positions, _ = jax.lax.fori_loop(0, num_steps, step,
                                   (start, optimizer.init(start)))
  return positions


def refine_loss(positions: jax.Array, neighbor_positions: jax.Array,
                memberships: jax.Array, negatives: jax.Array,
                negative_weight: jax.Array, *, a: float, b: float
                ) -> jax.Array:
  """The cross-entropy the refinement minimises (a sum over points).

  positions [P, d], neighbor_positions [P, k, d], memberships [P, k],
  negatives [P, M, d], negative_weight [P, 1].
  """
  positive_sq = jnp.sum(jnp.square(positions[:, None] - neighbor_positions),
                        axis=-1)
  negative_sq = jnp.sum(jnp.square(positions[:, None] - negatives), axis=-1)
  attraction = losses.umap_attraction(positive_sq, a, b)
  repulsion = losses.umap_repulsion(negative_sq, a, b)
  return (jnp.sum(memberships * attraction)
          + jnp.sum(negative_weight * repulsion))


def refine_gradient(positions, neighbor_positions, memberships, negatives,
                    negative_weight, *, a: float, b: float) -> jax.Array:
  """d refine_loss / d positions in closed form.

  With s = d^2 + eps and u = a s^b (so q = 1 / (1 + u)), d softplus(+-t) /
  d z = +-2 b (z - y) / s times u / (1 + u) (attraction) or 1 / (1 + u)
  (repulsion): one log and one exp per pair, and no loss value, which
  autodiff of the loss also computes: a cheaper step.
  """
  def coefficient_and_offset(others):  # others: [P, k or M, d]
    offset = positions[:, None] - others
    sq = jnp.sum(jnp.square(offset), axis=-1) + losses.UMAP_DISTANCE_EPSILON
    u = jnp.exp(math.log(a) + b * jnp.log(sq))
    return 2.0 * b / ((1.0 + u) * sq), u, offset

  scale, u, offset = coefficient_and_offset(neighbor_positions)
  attraction = jnp.sum((memberships * u * scale)[..., None] * offset, axis=1)
  scale, _, offset = coefficient_and_offset(negatives)
  repulsion = jnp.sum((negative_weight * scale)[..., None] * offset, axis=1)
  return attraction - repulsion


def refine_embedding(train_data: np.ndarray, train_embedding: np.ndarray,
                     points: np.ndarray, start: np.ndarray, *,
                     n_neighbors: int, metric: str, seed: int, a: float,
                     b: float, negative_sample_rate: int,
                     repulsion_strength: float, batch_size: int = 4096
                     ) -> np.ndarray:
  """New points' positions [n, d], refined from `start` [n, d].

  train_data: [N, ...] the fitted inputs; train_embedding: [N, d] their
  embedding; points: [n, ...] the new inputs. Each point's k nearest
  training points get umap-learn's transform memberships; batches of
  `batch_size` points are padded (padding rows have no memberships, hence
  no gradient), so one compiled shape serves any n.
  """
  train = train_data.reshape(len(train_data), -1)
  indices, distances = graph_lib.query_neighbors(
      train, points.reshape(len(points), -1), n_neighbors, metric=metric,
      random_state=seed)
  memberships = graph_lib.query_memberships(distances, n_neighbors)
  embedding = jax.device_put(train_embedding)
  key = jax.random.key(seed)
  batch_size = min(batch_size, len(points))
  pad = lambda v: np.pad(v, [(0, batch_size - len(v))]
                         + [(0, 0)] * (v.ndim - 1))
  outputs = []
  for start_row in range(0, len(points), batch_size):
    rows = slice(start_row, start_row + batch_size)
    refined = refine_positions(
        pad(start[rows]), pad(train_embedding[indices[rows]]),
        pad(memberships[rows]), embedding,
        jax.random.fold_in(key, start_row), a=a, b=b,
        negative_sample_rate=negative_sample_rate,
        repulsion_strength=repulsion_strength)
    outputs.append(np.asarray(refined)[:len(start[rows])])
  return np.concatenate(outputs)
