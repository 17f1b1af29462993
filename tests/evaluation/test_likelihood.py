"""IWAE against the closed-form likelihood of a linear-Gaussian model, in
sample chunks against the unchunked bound; the active-unit count against a
known answer."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from latent_jax.evaluation.likelihood import active_units, iwae_nll, sample_chunks

SIGMA = 0.5


class LinearGaussian:
  """p(z) = N(0, I), p(x|z) = N(W z + b, SIGMA^2 I); W has orthogonal
  columns, so the exact posterior is diagonal and has a closed form."""

  def __init__(self, mean_shift=0.0, log_variance_shift=0.0):
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 2)))
    self.w = jnp.asarray(basis * np.array([2.0, 0.7]), jnp.float32)
    self.b = jnp.asarray(rng.normal(size=6), jnp.float32)
    self.mean_shift, self.log_variance_shift = mean_shift, log_variance_shift

  def posterior(self, x):
    precision = 1.0 + jnp.sum(self.w**2, axis=0) / SIGMA**2      # diagonal
    mean = ((x - self.b) @ self.w) / SIGMA**2 / precision
    return mean, -jnp.log(precision) * jnp.ones_like(mean)

  def encode(self, x):
    mean, log_variance = self.posterior(x)
    return mean + self.mean_shift, log_variance + self.log_variance_shift

  def decode(self, z):
    return z @ self.w.T + self.b

  def log_marginal(self, x):
    covariance = self.w @ self.w.T + SIGMA**2 * jnp.eye(6)
    return stats.multivariate_normal(np.asarray(self.b),
                                     np.asarray(covariance)).logpdf(x)

  def negative_elbo(self, x):
    mean, log_variance = self.encode(x)
    variance = jnp.exp(log_variance)
    residual = x - self.decode(mean)
    expected_sq = (jnp.sum(residual**2, -1)
                   + jnp.sum(variance * jnp.sum(self.w**2, 0), -1))
    recon = (0.5 * expected_sq / SIGMA**2 + 6 * math.log(SIGMA)
             + 3 * math.log(2 * math.pi))
    kl = 0.5 * jnp.sum(variance + mean**2 - 1 - log_variance, -1)
    return np.asarray(recon + kl)


def _data(model, n=200):
  z = np.random.default_rng(1).normal(size=(n, 2))
  noise = np.random.default_rng(2).normal(size=(n, 6)) * SIGMA
  return jnp.asarray(np.asarray(model.decode(jnp.asarray(z))) + noise,
                     jnp.float32)


@pytest.mark.parametrize("num_samples", [1, 7])
def test_iwae_is_exact_with_the_true_posterior(num_samples):
  model = LinearGaussian()
  x = _data(model)
  nll = iwae_nll(model, x, jax.random.key(0), num_samples, "gaussian", SIGMA)
  np.testing.assert_allclose(nll, -model.log_marginal(np.asarray(x)),
                             rtol=1e-4, atol=1e-3)


def test_iwae_is_below_the_negative_elbo_and_tightens_with_k():
  model = LinearGaussian(mean_shift=0.6, log_variance_shift=0.8)
  x = _data(model, n=2000)
  exact = float(np.mean(-model.log_marginal(np.asarray(x))))
  neg_elbo = float(np.mean(model.negative_elbo(x)))
  per_example = {k: np.asarray(iwae_nll(model, x, jax.random.key(k), k,
                                        "gaussian", SIGMA))
                 for k in (1, 10, 100, 1000)}
  bounds = [float(values.mean()) for values in per_example.values()]
  # K=1 is a one-sample ELBO estimate: equal to the closed form up to noise.
  standard_error = per_example[1].std() / math.sqrt(len(x))
  assert abs(bounds[0] - neg_elbo) < 4 * standard_error
  assert all(a > b for a, b in zip(bounds, bounds[1:]))   # tightens
  assert bounds[1] < neg_elbo and bounds[-1] > exact - 0.01
  assert bounds[-1] - exact < 0.1 * (neg_elbo - exact)


def test_active_units_counts_dims_whose_means_vary():
  rng = np.random.default_rng(0)
  means = rng.normal(size=(5000, 4)) * np.array([1.0, 0.05, 0.3, 0.001])
  assert active_units(means) == 2  # variances 1, 0.0025, 0.09, 1e-6


def test_iwae_in_sample_chunks_equals_the_unchunked_bound():
  model = LinearGaussian(mean_shift=0.6, log_variance_shift=0.8)
  x = _data(model, n=20)
  whole = iwae_nll(model, x, jax.random.key(3), 50, "gaussian", SIGMA)
  for chunk in (7, 25):  # a padded last chunk, and equal chunks
    chunked = iwae_nll(model, x, jax.random.key(3), 50, "gaussian", SIGMA,
                       samples_per_chunk=chunk)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-5)
  assert sample_chunks(5000, 4096) == 2500 and sample_chunks(50, 4096) == 50
