"""latent_jax: accelerated training of latent-variable models in JAX/Flax."""

from latent_jax import losses
from latent_jax.models import AE, VAE, build_model

__all__ = ["AE", "VAE", "build_model", "losses"]
