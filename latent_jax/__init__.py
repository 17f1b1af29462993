"""latent_jax: accelerated training of latent-variable models in JAX/Flax."""

from latent_jax import losses
from latent_jax.data import Dataset, load_dataset
from latent_jax.models import AE, VAE, build_model

__all__ = ["AE", "VAE", "Dataset", "build_model", "load_dataset", "losses"]
