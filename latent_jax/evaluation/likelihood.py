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


def iwae_log_weights(model, images: jax.Array, key: jax.Array,
                     num_samples: int, likelihood: str,
                     gaussian_scale: float = 1.0) -> jax.Array:
  """[B, K] log importance weights log p(x, z_k) - log q(z_k | x).

  Args:
    model: a VAE (encode -> (mean, log_variance), decode).
    images: [B, H, W, C].
    num_samples: K posterior samples per image.
  """
  mean, log_variance = model.encode(images)
  std = jnp.exp(0.5 * log_variance)
  noise = jax.random.normal(key, (num_samples,) + mean.shape, mean.dtype)
  codes = mean + std * noise                                   # [K, B, D]
  log_q = _standard_normal_log_density(noise) - jnp.sum(
      jnp.log(std), axis=-1)                                   # [K, B]
  log_prior = _standard_normal_log_density(codes)               # [K, B]
  batch = images.shape[0]
  outputs = model.decode(codes.reshape(num_samples * batch, -1))
  targets = jnp.broadcast_to(images, (num_samples,) + images.shape)
  log_likelihood = -losses.reconstruction_nll(
      likelihood, outputs, targets.reshape(outputs.shape), gaussian_scale)
  log_weights = log_likelihood.reshape(num_samples, batch) + log_prior - log_q
  return log_weights.T


def iwae_nll(model, images: jax.Array, key: jax.Array, num_samples: int,
             likelihood: str, gaussian_scale: float = 1.0) -> jax.Array:
  """[B] negative IWAE bound with K = num_samples (an upper bound on -log p)."""
  log_weights = iwae_log_weights(model, images, key, num_samples, likelihood,
                                 gaussian_scale)
  return -(jax.nn.logsumexp(log_weights, axis=1) - math.log(num_samples))


def make_iwae_evaluator(graphdef: nnx.GraphDef, num_samples: int,
                        likelihood: str, gaussian_scale: float = 1.0
                        ) -> Callable:
  """Jitted `nll(params, images [N, ...], key) -> [N]`, batched on device."""
  batch_size = max(1, DECODES_PER_BATCH // num_samples)

  @jax.jit
  def evaluate(params, images, key):
    model = nnx.merge(graphdef, params)
    return map_in_batches(
        lambda batch, batch_key: iwae_nll(model, batch, batch_key,
                                          num_samples, likelihood,
                                          gaussian_scale),
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
