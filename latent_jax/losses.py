"""Pure, per-example losses for latent-variable models.

Every function returns one value per example (shape `[B]`); callers choose the
reduction. Nothing here knows about models or trainers.

Parameterisation: the Gaussian posterior is `q(z|x) = N(mean, exp(log_variance))`
everywhere in this project (encoder heads output `mean` and `log_variance`).
The Keras VAE-vs-AE heatmap notebook sampled with `exp(log_sigma)` but computed
the KL as if the same number were a log-variance; we use the log-variance
consistently.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

LIKELIHOODS = ("bernoulli", "gaussian")


def _sum_over_non_batch(values: jax.Array) -> jax.Array:
  return jnp.sum(values.reshape(values.shape[0], -1), axis=-1)


def bernoulli_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Negative log-likelihood of targets under Bernoulli(sigmoid(logits)).

  Binary cross-entropy summed over pixels, computed from logits in the stable
  form `max(l, 0) - l * x + log1p(exp(-|l|))` (no `log(sigmoid)` underflow).
  Targets may be continuous in [0, 1] (as for density heatmaps).

  Args:
    logits: [B, ...] decoder outputs.
    targets: [B, ...] values in [0, 1], same shape as `logits`.

  Returns:
    [B] summed negative log-likelihood (nats).
  """
  per_pixel = (jnp.maximum(logits, 0.0) - logits * targets
               + jnp.log1p(jnp.exp(-jnp.abs(logits))))
  return _sum_over_non_batch(per_pixel)


def gaussian_nll(mean: jax.Array, targets: jax.Array,
                 scale: float | jax.Array = 1.0) -> jax.Array:
  """Negative log-likelihood of targets under N(mean, scale**2), summed.

  Args:
    mean: [B, ...] decoder outputs (the Gaussian mean).
    targets: [B, ...] same shape as `mean`.
    scale: the observation standard deviation (scalar or broadcastable).

  Returns:
    [B] summed negative log-likelihood (nats), including the normaliser.
  """
  scale = jnp.asarray(scale, dtype=mean.dtype)
  per_pixel = (0.5 * jnp.square((targets - mean) / scale) + jnp.log(scale)
               + 0.5 * math.log(2.0 * math.pi))
  return _sum_over_non_batch(jnp.broadcast_to(per_pixel, mean.shape))


def reconstruction_nll(likelihood: str, decoder_output: jax.Array,
                       targets: jax.Array, gaussian_scale: float = 1.0
                       ) -> jax.Array:
  """[B] reconstruction loss for the named likelihood (the AE loss).

  `decoder_output` is logits for "bernoulli" and the mean for "gaussian".
  """
  if likelihood == "bernoulli":
    return bernoulli_nll(decoder_output, targets)
  if likelihood == "gaussian":
    return gaussian_nll(decoder_output, targets, gaussian_scale)
  raise ValueError(f"Unknown likelihood {likelihood!r}; expected one of "
                   f"{LIKELIHOODS}.")


def decoder_mean(likelihood: str, decoder_output: jax.Array) -> jax.Array:
  """The expected image under the likelihood: sigmoid(logits) or the mean."""
  if likelihood == "bernoulli":
    return jax.nn.sigmoid(decoder_output)
  if likelihood == "gaussian":
    return decoder_output
  raise ValueError(f"Unknown likelihood {likelihood!r}; expected one of "
                   f"{LIKELIHOODS}.")


def gaussian_kl_to_standard_normal(mean: jax.Array,
                                   log_variance: jax.Array,
                                   mask: jax.Array | None = None
                                   ) -> jax.Array:
  """Analytic KL(N(mean, exp(log_variance)) || N(0, I)), summed over dims.

  Args:
    mean: [B, D] posterior means.
    log_variance: [B, D] posterior log-variances.
    mask: optional [D] (or [B, D]) weights, 1 for the dims that count and 0
      for dims outside the model (a latent mask): their KL is left out.

  Returns:
    [B] KL divergence in nats.
  """
  per_dim = 0.5 * (jnp.exp(log_variance) + jnp.square(mean) - 1.0
                   - log_variance)
  if mask is not None:
    per_dim = per_dim * mask
  return jnp.sum(per_dim, axis=-1)


def kl_warmup_factor(step: jax.Array | int, warmup_steps: int) -> jax.Array:
  """Linear KL warm-up: 0 at step 0, rising to 1 at `warmup_steps`.

  With `warmup_steps <= 0` the factor is always 1.
  """
  if warmup_steps <= 0:
    return jnp.ones((), jnp.float32)
  return jnp.clip(jnp.asarray(step, jnp.float32) / warmup_steps, 0.0, 1.0)


def negative_elbo(reconstruction: jax.Array, kl: jax.Array,
                  kl_weight: float | jax.Array = 1.0) -> jax.Array:
  """[B] weighted negative ELBO: `reconstruction + kl_weight * kl`.

  `kl_weight` may be a traced array (KL-weight sweeps vmap over it). With
  `kl_weight=1` this is the (negative) evidence lower bound itself.
  """
  return reconstruction + kl_weight * kl


def elbo(reconstruction: jax.Array, kl: jax.Array) -> jax.Array:
  """[B] evidence lower bound, `-(reconstruction + kl)` (nats)."""
  return -negative_elbo(reconstruction, kl, 1.0)


# --- UMAP -------------------------------------------------------------------

UMAP_DISTANCE_EPSILON = 1e-3  # as UMAP's repulsive gradient: no 1/0 at d = 0


def umap_log_odds(squared_distance: jax.Array, a: float, b: float
                  ) -> jax.Array:
  """t = log(a * d^(2b)), so that UMAP's q(d) = 1 / (1 + a d^(2b)) = sigmoid(-t).

  Working with t keeps both cross-entropy terms finite: -log q = softplus(t)
  and -log(1 - q) = softplus(-t), with no `log(0)` at either end.
  """
  return math.log(a) + b * jnp.log(squared_distance + UMAP_DISTANCE_EPSILON)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _umap_term(squared_distance: jax.Array, a: float, b: float, sign: float
               ) -> jax.Array:
  """softplus(sign * t) of `umap_log_odds` t; sign +1: -log q, -1: -log(1-q)."""
  return jax.nn.softplus(sign * umap_log_odds(squared_distance, a, b))


def _umap_term_forward(squared_distance, a, b, sign):
  t = sign * umap_log_odds(squared_distance, a, b)
  small = jnp.exp(-jnp.abs(t))  # the one exp serves the value and gradient
  value = jnp.maximum(t, 0.0) + jnp.log1p(small)
  sigmoid = jnp.where(t >= 0, 1.0, small) / (1.0 + small)
  return value, (sigmoid, squared_distance)


def _umap_term_backward(a, b, sign, residuals, cotangent):
  del a
  sigmoid, squared_distance = residuals
  # d softplus(sign t) / d s = sign sigmoid(sign t) b / (s + eps).
  return (cotangent * sign * b * sigmoid
          / (squared_distance + UMAP_DISTANCE_EPSILON),)


_umap_term.defvjp(_umap_term_forward, _umap_term_backward)


def umap_attraction(squared_distance: jax.Array, a: float, b: float
                    ) -> jax.Array:
  """-log q(d) = softplus(t), elementwise over squared distances [...].

  Its gradient is written out (one log, one exp and one log1p per element
  for value and gradient together, where autodiff recomputes them): the
  full-batch step evaluates it on every edge and negative pair.
  """
  return _umap_term(squared_distance, a, b, 1.0)


def umap_repulsion(squared_distance: jax.Array, a: float, b: float
                   ) -> jax.Array:
  """-log(1 - q(d)) = softplus(-t), elementwise, as `umap_attraction`."""
  return _umap_term(squared_distance, a, b, -1.0)


def umap_cross_entropy(positive_sq_dist: jax.Array,
                       negative_sq_dist: jax.Array, a: float, b: float,
                       repulsion_strength: float = 1.0,
                       negative_weight: jax.Array | None = None
                       ) -> jax.Array:
  """UMAP's fuzzy-set cross-entropy for sampled edges, per positive edge.

  Args:
    positive_sq_dist: [B] squared embedding distances along sampled edges
      (target membership 1).
    negative_sq_dist: [B, M] squared distances from each edge's head to M
      uniformly drawn points (target membership 0).
    a, b: the low-dimensional curve's parameters (`find_ab_params`).
    repulsion_strength: weight of the negative terms (UMAP's gamma).
    negative_weight: [B, M] importance weights of negatives drawn from
      another distribution than the uniform (None: all 1).

  Returns:
    [B]: -log q(positive) - gamma * sum_m w_m log(1 - q(negative_m)).
  """
  attraction = umap_attraction(positive_sq_dist, a, b)
  repulsion = umap_repulsion(negative_sq_dist, a, b)
  if negative_weight is not None:
    repulsion = negative_weight * repulsion
  return attraction + repulsion_strength * jnp.sum(repulsion, axis=-1)


def umap_weighted_cross_entropy(positive_sq_dist: jax.Array,
                                edge_share: jax.Array,
                                negative_sq_dist: jax.Array,
                                head_share: jax.Array, a: float, b: float,
                                negative_sample_rate: int,
                                repulsion_strength: float = 1.0
                                ) -> jax.Array:
  """The expectation of `umap_cross_entropy` over edges drawn by weight.

  Every edge is scored with its share of the weight instead of sampled, and
  each point's repulsion is averaged over its own M uniform negatives and
  weighted by its share as a head: the same objective, minus the variance
  of drawing the edges.

  Args:
    positive_sq_dist: [E] squared embedding distances along every edge
      (or every unordered pair of a symmetric graph: the distance is the
      same both ways).
    edge_share: [E] each edge's (pair's: both directions') weight over the
      total (sums to 1; padding 0).
    negative_sq_dist: [N, M] squared distances from each point to M
      uniformly drawn points.
    head_share: [N] each point's summed edge_share as a head.
    a, b, repulsion_strength: as `umap_cross_entropy`.
    negative_sample_rate: negatives per positive edge in the sampled loss.

  Returns:
    A scalar: sum_e share_e (-log q_e) - gamma * rate * sum_i share_i
    mean_m log(1 - q_im).
  """
  attraction = umap_attraction(positive_sq_dist, a, b)
  repulsion = umap_repulsion(negative_sq_dist, a, b)
  return (jnp.sum(edge_share * attraction)
          + repulsion_strength * negative_sample_rate
          * jnp.sum(head_share * jnp.mean(repulsion, axis=-1)))
