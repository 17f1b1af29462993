"""Losses against NumPy/SciPy references and closed forms (the VAE terms and
UMAP's cross-entropy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from latent_jax import losses
from latent_jax.umap.curve import find_ab_params


def test_bernoulli_nll_matches_numpy_and_is_stable():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (4, 6, 6, 1)).astype(np.float32)
  targets = rng.uniform(0, 1, (4, 6, 6, 1)).astype(np.float32)
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  reference = -(targets * np.log(p) + (1 - targets) * np.log1p(-p))
  np.testing.assert_allclose(losses.bernoulli_nll(logits, targets),
                             reference.reshape(4, -1).sum(1), rtol=1e-5)
  # Extreme logits: finite and equal to the asymptote |l| for the wrong label.
  extreme = losses.bernoulli_nll(jnp.array([[200.0, -200.0]]),
                                 jnp.array([[0.0, 1.0]]))
  np.testing.assert_allclose(extreme, [400.0], rtol=1e-6)


def test_gaussian_nll_matches_scipy():
  rng = np.random.default_rng(1)
  mean = rng.normal(size=(3, 5)).astype(np.float32)
  x = rng.normal(size=(3, 5)).astype(np.float32)
  reference = -stats.norm(mean, 0.3).logpdf(x).sum(1)
  np.testing.assert_allclose(losses.gaussian_nll(mean, x, 0.3), reference,
                             rtol=1e-5)


def test_kl_matches_monte_carlo_estimate():
  mean = jnp.array([[0.5, -1.0, 0.0], [2.0, 0.3, -0.7]])
  log_variance = jnp.array([[0.2, -1.0, 0.0], [-2.0, 0.5, 1.0]])
  analytic = losses.gaussian_kl_to_standard_normal(mean, log_variance)
  std = np.exp(0.5 * np.asarray(log_variance))
  z = np.asarray(mean)[None] + std[None] * np.random.default_rng(2).normal(
      size=(400_000,) + mean.shape)
  log_q = stats.norm(np.asarray(mean), std).logpdf(z).sum(-1)
  log_p = stats.norm(0, 1).logpdf(z).sum(-1)
  np.testing.assert_allclose(analytic, (log_q - log_p).mean(0), rtol=2e-2,
                             atol=5e-3)
  # Zero exactly at the prior.
  np.testing.assert_allclose(
      losses.gaussian_kl_to_standard_normal(jnp.zeros((1, 4)),
                                            jnp.zeros((1, 4))), [0.0])


def test_warmup_elbo_and_dispatch():
  np.testing.assert_allclose(
      [losses.kl_warmup_factor(s, 100) for s in (0, 50, 100, 500)],
      [0.0, 0.5, 1.0, 1.0])
  assert float(losses.kl_warmup_factor(0, 0)) == 1.0
  recon, kl = jnp.array([3.0, 4.0]), jnp.array([1.0, 2.0])
  np.testing.assert_allclose(losses.negative_elbo(recon, kl, 0.5), [3.5, 5.0])
  np.testing.assert_allclose(losses.elbo(recon, kl), [-4.0, -6.0])
  logits = jnp.zeros((2, 3))
  np.testing.assert_allclose(
      losses.reconstruction_nll("bernoulli", logits, jnp.ones((2, 3))),
      3 * np.log(2.0) * np.ones(2), rtol=1e-6)
  np.testing.assert_allclose(losses.decoder_mean("bernoulli", logits), 0.5)
  with pytest.raises(ValueError, match="likelihood"):
    losses.reconstruction_nll("poisson", logits, logits)


def test_kl_weight_can_be_traced_and_vmapped():
  recon, kl = jnp.array([3.0, 4.0]), jnp.array([1.0, 2.0])
  weights = jnp.array([0.0, 1.0, 2.0])
  out = jax.vmap(lambda w: losses.negative_elbo(recon, kl, w).sum())(weights)
  np.testing.assert_allclose(out, [7.0, 10.0, 13.0])


def test_bernoulli_nll_of_a_perfect_prediction_is_the_target_entropy():
  # The floor `recon_floor` in eval.json: soft targets cannot reach BCE 0.
  x = np.random.default_rng(3).uniform(0.01, 0.99, (2, 50))
  logits = np.log(x) - np.log1p(-x)
  entropy = np.array([stats.bernoulli(p).entropy().sum() for p in x])
  np.testing.assert_allclose(losses.bernoulli_nll(logits, x), entropy,
                             rtol=1e-5)


def test_umap_cross_entropy_matches_numpy():
  rng = np.random.default_rng(0)
  positive = rng.uniform(0, 9, 7).astype(np.float32)
  negative = rng.uniform(0, 9, (7, 5)).astype(np.float32)
  positive[0], negative[0, 0] = 0.0, 0.0  # the ends stay finite
  a, b = find_ab_params(1.0, 0.1)
  ours = losses.umap_cross_entropy(jnp.asarray(positive),
                                   jnp.asarray(negative), a, b, 0.7)
  eps = losses.UMAP_DISTANCE_EPSILON
  q = lambda sq: 1.0 / (1.0 + a * (sq.astype(np.float64) + eps) ** b)
  reference = -np.log(q(positive)) - 0.7 * np.log(1 - q(negative)).sum(-1)
  np.testing.assert_allclose(ours, reference, rtol=1e-5)
  assert np.all(np.isfinite(jax.grad(lambda p: losses.umap_cross_entropy(
      p, jnp.asarray(negative), a, b).sum())(jnp.asarray(positive))))


def test_umap_terms_gradients_match_finite_differences_and_autodiff():
  # The written-out gradients of -log q and -log(1 - q) against central
  # differences (float64) and against autodiff of softplus(+-t).
  a, b = find_ab_params(1.0, 0.1)
  squared = np.geomspace(1e-6, 1e4, 41)
  with jax.enable_x64():
    for term, sign in ((losses.umap_attraction, 1.0),
                       (losses.umap_repulsion, -1.0)):
      x = jnp.asarray(squared, jnp.float64)
      ours = jax.grad(lambda s: jnp.sum(term(s, a, b)))(x)
      plain = jax.grad(lambda s: jnp.sum(jax.nn.softplus(
          sign * losses.umap_log_odds(s, a, b))))(x)
      step = 1e-6 * (x + 1e-3)
      central = (term(x + step, a, b) - term(x - step, a, b)) / (2 * step)
      np.testing.assert_allclose(ours, central, rtol=1e-5)
      np.testing.assert_allclose(ours, plain, rtol=1e-12)
      np.testing.assert_allclose(term(x, a, b), jax.nn.softplus(
          sign * losses.umap_log_odds(x, a, b)), rtol=1e-12)


def test_weighted_umap_cross_entropy_is_the_sampled_losss_expectation():
  # 6 points, 9 weighted directed edges; the sampled loss draws edges by
  # weight and 3 uniform negatives per edge (NumPy Monte Carlo, float64).
  rng = np.random.default_rng(1)
  z = rng.normal(0, 2, (6, 2))
  head, tail = rng.integers(0, 6, 9), rng.integers(0, 6, 9)
  weight = rng.uniform(0.1, 1.0, 9)
  share = weight / weight.sum()
  head_share = np.bincount(head, share, minlength=6)
  sq = lambda i, j: np.sum((z[i] - z[j]) ** 2, axis=-1)
  a, b = find_ab_params(1.0, 0.1)
  every_point = np.broadcast_to(np.arange(6), (6, 6))
  ours = float(losses.umap_weighted_cross_entropy(
      jnp.asarray(sq(head, tail), jnp.float32), jnp.asarray(share,
                                                            jnp.float32),
      jnp.asarray(sq(np.arange(6)[:, None], every_point), jnp.float32),
      jnp.asarray(head_share, jnp.float32), a, b, 3, 0.7))
  draws = rng.choice(9, 400_000, p=share)
  negatives = rng.integers(0, 6, (400_000, 3))
  sampled = np.mean(losses.umap_cross_entropy(
      jnp.asarray(sq(head[draws], tail[draws]), jnp.float32),
      jnp.asarray(sq(head[draws][:, None], negatives), jnp.float32), a, b,
      0.7))
  np.testing.assert_allclose(ours, sampled, rtol=5e-3)


def test_masked_kl_counts_only_the_unmasked_dims():
  rng = np.random.default_rng(7)
  mean = rng.normal(size=(3, 5)).astype(np.float32)
  log_variance = rng.normal(size=(3, 5)).astype(np.float32)
  mask = np.array([1, 1, 1, 0, 0], np.float32)
  # Closed form on the first 3 dims only (NumPy, float64).
  m, lv = mean[:, :3].astype(np.float64), log_variance[:, :3].astype(
      np.float64)
  reference = 0.5 * (np.exp(lv) + m ** 2 - 1 - lv).sum(-1)
  np.testing.assert_allclose(
      losses.gaussian_kl_to_standard_normal(mean, log_variance, mask),
      reference, rtol=1e-5)
