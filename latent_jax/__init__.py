"""latent_jax: accelerated training of latent-variable models in JAX/Flax."""

from latent_jax import losses
from latent_jax.data import Dataset, load_dataset
from latent_jax.models import AE, VAE, build_model
from latent_jax.umap import ParametricUMAP

__all__ = ["AE", "VAE", "Dataset", "ParametricUMAP", "build_model", "load_dataset", "losses"]
