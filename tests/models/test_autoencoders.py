"""The VAE's reparameterisation; the public model classes; the latent mask
against the smaller model itself."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from latent_jax import AE, VAE, build_model, losses
from latent_jax.models.autoencoders import latent_mask, restrict_latent


def test_vae_reparameterisation_uses_log_variance():
  vae = build_model("vae", "small", (8, 8, 1), 2, rngs=nnx.Rngs(0))
  mean = jnp.array([[1.0, -2.0]])
  log_variance = jnp.log(jnp.array([[4.0, 0.25]]))
  keys = jax.random.split(jax.random.key(0), 20000)
  z = jax.vmap(lambda k: vae.sample_posterior(mean, log_variance, k))(keys)
  np.testing.assert_allclose(z.mean(0)[0], [1.0, -2.0], atol=0.05)
  np.testing.assert_allclose(z.std(0)[0], [2.0, 0.5], rtol=0.03)


def test_public_imports():
  assert VAE.__name__ == "VAE" and AE.__name__ == "AE"


# --- The latent mask: a D-model with mask d is the d-model -------------------


def _wide_and_narrow(kind, wide, narrow):
  """(graphdef, params) of a `wide` model and of its `narrow` restriction."""
  big = nnx.split(build_model(kind, "small", (8, 8, 1), wide,
                              rngs=nnx.Rngs(3)))
  small = nnx.split(nnx.eval_shape(lambda: build_model(
      kind, "small", (8, 8, 1), narrow, rngs=nnx.Rngs(4))))
  return big, (small[0], restrict_latent(big[1], small[1], wide, narrow))


@jax.jit
def _masked_and_narrow_vae(big_params, small_params, images, key):
  big = nnx.merge(_VAE_GRAPHS[0], big_params)
  small = nnx.merge(_VAE_GRAPHS[1], small_params)
  mask = jnp.asarray(latent_mask(2, 4))
  masked = big(images, key, mask)
  # The narrow model fed the same noise: eps[:, :2] of the [B, 4] draw.
  mean, log_variance = small.encode(images)
  noise = jax.random.normal(key, (images.shape[0], 4))[:, :2]
  codes = mean + jnp.exp(0.5 * log_variance) * noise
  narrow = (small.decode(codes), mean, log_variance, codes)
  kl = big.loss_terms(images, key, "bernoulli", latent_mask=mask)["kl"]
  grads = jax.grad(lambda p: jnp.sum(nnx.merge(_VAE_GRAPHS[0], p).loss_terms(
      images, key, "bernoulli", latent_mask=mask)["recon"]))(big_params)
  return masked, narrow, kl, grads


_VAE_GRAPHS = []


def test_masked_vae_is_the_smaller_vae_and_masked_dims_get_no_gradient():
  (big_graph, big), (small_graph, small) = _wide_and_narrow("vae", 4, 2)
  _VAE_GRAPHS[:] = [big_graph, small_graph]
  np.testing.assert_array_equal(latent_mask(2, 4), [1, 1, 0, 0])
  images = jax.random.uniform(jax.random.key(0), (5, 8, 8, 1))
  masked, narrow, kl, grads = _masked_and_narrow_vae(
      big, small, images, jax.random.key(1))
  outputs, mean, log_variance, codes = masked
  np.testing.assert_allclose(outputs, narrow[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(codes[:, :2], narrow[3], rtol=1e-5, atol=1e-6)
  for masked_part in (codes, mean, log_variance):
    np.testing.assert_array_equal(masked_part[:, 2:], 0.0)
  np.testing.assert_allclose(kl, losses.gaussian_kl_to_standard_normal(
      narrow[1], narrow[2]), rtol=1e-5)
  for head in ("mean_head", "log_variance_head"):
    kernel = np.asarray(grads[head]["kernel"][...])
    np.testing.assert_array_equal(kernel[:, 2:], 0.0)
    assert np.abs(kernel[:, :2]).max() > 0
  np.testing.assert_array_equal(grads["decoder"]["project"]["kernel"][...][2:],
                                0.0)


def test_masked_ae_zeroes_the_masked_codes():
  (big_graph, big), (small_graph, small) = _wide_and_narrow("ae", 3, 1)
  images = jax.random.uniform(jax.random.key(2), (4, 8, 8, 1))

  @jax.jit
  def both(big, small):
    return (nnx.merge(big_graph, big)(images, None, jnp.asarray(
        latent_mask(1, 3))), nnx.merge(small_graph, small)(images))
  (outputs, codes), narrow = both(big, small)
  np.testing.assert_allclose(codes[:, :1], narrow.codes, rtol=1e-5)
  np.testing.assert_array_equal(codes[:, 1:], 0.0)
  np.testing.assert_allclose(outputs, narrow.outputs, rtol=1e-5, atol=1e-5)


def test_bad_latent_masks_say_what_fits():
  abstract = lambda arch, shape, dim: nnx.split(nnx.eval_shape(
      lambda: build_model("vae", arch, shape, dim, rngs=nnx.Rngs(0))))
  graph, params = abstract("small", (8, 8, 1), 3)
  with pytest.raises(ValueError, match="latent_dim=3"):
    latent_mask(4, 3)
  with pytest.raises(ValueError, match="latent_dim=3"):
    latent_mask(0, 3)
  with pytest.raises(ValueError, match=r"latent_mask has shape \(4,\)"):
    jax.eval_shape(lambda p: nnx.merge(graph, p)(
        jnp.zeros((1, 8, 8, 1)), jax.random.key(0), jnp.ones(4)), params)
  for other in (abstract("keras_conv", (8, 8, 1), 2),  # another tree
                abstract("small", (16, 16, 1), 2)):    # another trunk width
    with pytest.raises(ValueError, match="more than the latent size"):
      restrict_latent(params, other[1], 3, 2)
