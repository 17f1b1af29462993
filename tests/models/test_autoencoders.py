"""The VAE's reparameterisation; the public model classes."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from latent_jax import AE, VAE, build_model


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
