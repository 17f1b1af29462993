"""latent_jax: accelerated training of latent-variable models in JAX/Flax."""

from latent_jax import losses
from latent_jax.data import Dataset, load_dataset
from latent_jax.models import AE, VAE, build_model

__all__ = ["AE", "VAE", "Dataset", "ParametricUMAP", "build_model", "load_dataset", "losses"]


def __getattr__(name: str):
  # ParametricUMAP is a scikit-learn estimator: importing it imports
  # scikit-learn, which a VAE-only user should not pay for at import.
  if name == "ParametricUMAP":
    from latent_jax.umap import ParametricUMAP
    return ParametricUMAP
  raise AttributeError(f"module 'latent_jax' has no attribute {name!r}")
