"""Log-likelihood estimates for VAEs: the IWAE bound and active units.

IWAE (Burda et al., 2016): with K posterior samples z_k ~ q(z|x),
  log p(x) >= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),
a bound that equals the ELBO at K = 1 and tightens monotonically (in
expectation) as K grows. `iwae_nll` returns minus that bound, in nats.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from latent_jax import losses
from latent_jax.evaluation.metrics import map_in_batches

# Decodes per device call (images x samples); bounds memory, not results.
DECODES_PER_BATCH = 4096


def _standard_normal_log_density(z: jax.Array) -> jax.Array:
  return -0.5 * jnp.sum(jnp.square(z) + math.log(2 * math.pi), axis=-1)


def _log_weights(model, images: jax.Array, mean: jax.Array, std: jax.Array,
                 sample_keys: jax.Array, likelihood: str,
                 gaussian_scale: float) -> jax.Array:
  """[B, S] log weights of the S samples drawn from sample_keys [S]."""
  noise = jax.vmap(lambda k: jax.random.normal(k, mean.shape, mean.dtype))(
      sample_keys)                                             # [S, B, D]
  codes = mean + std * noise
  log_q = _standard_normal_log_density(noise) - jnp.sum(
      jnp.log(std), axis=-1)                                   # [S, B]
  log_prior = _standard_normal_log_density(codes)               # [S, B]
  num_samples, batch = noise.shape[:2]
  outputs = model.decode(codes.reshape(num_samples * batch, -1))
  targets = jnp.broadcast_to(images, (num_samples,) + images.shape)
  log_likelihood = -losses.reconstruction_nll(
      likelihood, outputs, targets.reshape(outputs.shape), gaussian_scale)
  log_weights = log_likelihood.reshape(num_samples, batch) + log_prior - log_q
  return log_weights.T


def iwae_log_weights(model, images: jax.Array, key: jax.Array,
                     num_samples: int, likelihood: str,
                     gaussian_scale: float = 1.0) -> jax.Array:
  """[B, K] log importance weights log p(x, z_k) - log q(z_k | x).

  Sample k's noise comes from the k-th of `jax.random.split(key, K)`, so
  any grouping of the samples (`iwae_nll`'s chunks) draws the same z_k.

  Args:
    model: a VAE (encode -> (mean, log_variance), decode).
    images: [B, H, W, C].
    num_samples: K posterior samples per image.
  """
  mean, log_variance = model.encode(images)
  return _log_weights(model, images, mean, jnp.exp(0.5 * log_variance),
                      jax.random.split(key, num_samples), likelihood,
                      gaussian_scale)


def sample_chunks(num_samples: int, max_chunk: int) -> int:
  """Samples per chunk: K split into ceil(K / max_chunk) near-equal chunks."""
  num_chunks = -(-num_samples // max(1, max_chunk))
  return -(-num_samples // num_chunks)


def iwae_nll(model, images: jax.Array, key: jax.Array, num_samples: int,
             likelihood: str, gaussian_scale: float = 1.0,
             samples_per_chunk: int | None = None) -> jax.Array:
  """[B] negative IWAE bound with K = num_samples (an upper bound on -log p).

  With `samples_per_chunk` < K the K samples are decoded chunk by chunk
  (a `lax.scan` carrying a running logsumexp), so memory is that of one
  chunk; the samples, and so the result, are those of the unchunked call.
  """
  chunk = sample_chunks(num_samples, samples_per_chunk or num_samples)
  mean, log_variance = model.encode(images)
  std = jnp.exp(0.5 * log_variance)
  sample_keys = jax.random.split(key, num_samples)
  if chunk >= num_samples:
    log_weights = _log_weights(model, images, mean, std, sample_keys,
                               likelihood, gaussian_scale)
    return -(jax.nn.logsumexp(log_weights, axis=1) - math.log(num_samples))
  num_chunks = -(-num_samples // chunk)
  padding = num_chunks * chunk - num_samples
  padded = jnp.concatenate([sample_keys, sample_keys[:padding]])
  valid = (jnp.arange(num_chunks * chunk) < num_samples).reshape(
      num_chunks, chunk)

  def step(total, inputs):
    keys, keep = inputs
    log_weights = _log_weights(model, images, mean, std, keys, likelihood,
                               gaussian_scale)
    log_weights = jnp.where(keep[None, :], log_weights, -jnp.inf)
    return jnp.logaddexp(total, jax.nn.logsumexp(log_weights, axis=1)), None

  start = jnp.full(images.shape[:1], -jnp.inf, mean.dtype)
  total, _ = jax.lax.scan(
      step, start, (padded.reshape((num_chunks, chunk) + padded.shape[1:]),
                    valid))
  return -(total - math.log(num_samples))


def make_iwae_evaluator(graphdef: nnx.GraphDef, num_samples: int,
                        likelihood: str, gaussian_scale: float = 1.0
                        ) -> Callable:
  """Jitted `nll(params, images [N, ...], key) -> [N]`, batched on device.

  At most `DECODES_PER_BATCH` decodes per step: images in batches, and for
  K above it (the benchmark's K = 5000) the samples in chunks as well.
  """
  chunk = sample_chunks(num_samples, DECODES_PER_BATCH)
  batch_size = max(1, DECODES_PER_BATCH // chunk)

  @jax.jit
  def evaluate(params, images, key):
    model = nnx.merge(graphdef, params)
    return map_in_batches(
        lambda batch, batch_key: iwae_nll(model, batch, batch_key,
                                          num_samples, likelihood,
                                          gaussian_scale, chunk),
        images, key, batch_size)

  return evaluate


def active_units(posterior_means: np.ndarray, threshold: float = 0.01
                 ) -> int:
  """Latent dims whose posterior mean varies across data: Cov_x(E_q[z]) > t.

  Args:
    posterior_means: [N, D] posterior means of N inputs.
  """
  variances = np.var(np.asarray(posterior_means, np.float64), axis=0)
  return int(np.sum(variances > threshold))
