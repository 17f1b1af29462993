"""VAE and AE: one encoder trunk + latent head(s) + one decoder.

Both share the encoder/decoder classes; they differ only in the head (a
Gaussian posterior with two heads vs one deterministic code head) and in the
loss terms. Modules hold no config objects: build them from presets
(`latent_jax.models.presets.build_model`) or pass your own trunk and decoder.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from latent_jax import losses


class Posterior(NamedTuple):
  """The Gaussian posterior q(z|x) = N(mean, exp(log_variance))."""
  mean: jax.Array          # [B, D]
  log_variance: jax.Array  # [B, D]


class VAEOutput(NamedTuple):
  """One VAE pass with one posterior sample."""
  outputs: jax.Array       # [B, H, W, C] decoder logits or means
  mean: jax.Array          # [B, D]
  log_variance: jax.Array  # [B, D]
  codes: jax.Array         # [B, D] the sample z


class AEOutput(NamedTuple):
  """One AE pass."""
  outputs: jax.Array  # [B, H, W, C] decoder logits or means
  codes: jax.Array    # [B, D]


class VAE(nnx.Module):
  """Variational autoencoder with posterior N(mean, exp(log_variance)).

  Args:
    encoder: trunk mapping [B, H, W, C] -> [B, encoder.out_features].
    decoder: maps [B, latent_dim] -> [B, H, W, C] (logits or means).
    latent_dim: size of the latent code.
  """

  def __init__(self, encoder: nnx.Module, decoder: nnx.Module,
               latent_dim: int, *, rngs: nnx.Rngs):
    if latent_dim < 1:
      raise ValueError(f"latent_dim must be >= 1, got {latent_dim}.")
    self.latent_dim = latent_dim
    self.encoder = encoder
    self.mean_head = nnx.Linear(encoder.out_features, latent_dim, rngs=rngs)
    self.log_variance_head = nnx.Linear(encoder.out_features, latent_dim,
                                        rngs=rngs)
    self.decoder = decoder

  def encode(self, images: jax.Array) -> Posterior:
    """images [B, H, W, C] -> Posterior(mean [B, D], log_variance [B, D])."""
    features = self.encoder(images)
    return Posterior(self.mean_head(features),
                     self.log_variance_head(features))

  def decode(self, codes: jax.Array) -> jax.Array:
    """codes [B, D] -> decoder outputs [B, H, W, C] (logits or means)."""
    return self.decoder(codes)

  def sample_posterior(self, mean: jax.Array, log_variance: jax.Array,
                       key: jax.Array) -> jax.Array:
    """Reparameterised z = mean + exp(log_variance / 2) * eps, [B, D]."""
    noise = jax.random.normal(key, mean.shape, mean.dtype)
    return mean + jnp.exp(0.5 * log_variance) * noise

  def __call__(self, images: jax.Array, key: jax.Array) -> VAEOutput:
    """(decoder outputs [B, H, W, C], mean, log_variance, z [B, D])."""
    mean, log_variance = self.encode(images)
    codes = self.sample_posterior(mean, log_variance, key)
    return VAEOutput(self.decode(codes), mean, log_variance, codes)

  def embed(self, images: jax.Array) -> jax.Array:
    """Deterministic latent code used for plots and kNN: the posterior mean."""
    return self.encode(images).mean

  def loss_terms(self, images: jax.Array, key: jax.Array, likelihood: str,
                 gaussian_scale: float = 1.0) -> dict[str, jax.Array]:
    """Per-example terms {"recon": [B], "kl": [B]} with one posterior sample."""
    outputs, mean, log_variance, _ = self(images, key)
    return {
        "recon": losses.reconstruction_nll(likelihood, outputs, images,
                                           gaussian_scale),
        "kl": losses.gaussian_kl_to_standard_normal(mean, log_variance),
    }


class AE(nnx.Module):
  """Deterministic autoencoder: code = head(encoder(images))."""

  def __init__(self, encoder: nnx.Module, decoder: nnx.Module,
               latent_dim: int, *, rngs: nnx.Rngs):
    if latent_dim < 1:
      raise ValueError(f"latent_dim must be >= 1, got {latent_dim}.")
    self.latent_dim = latent_dim
    self.encoder = encoder
    self.code_head = nnx.Linear(encoder.out_features, latent_dim, rngs=rngs)
    self.decoder = decoder

  def encode(self, images: jax.Array) -> jax.Array:
    """images [B, H, W, C] -> codes [B, D]."""
    return self.code_head(self.encoder(images))

  def decode(self, codes: jax.Array) -> jax.Array:
    """codes [B, D] -> decoder outputs [B, H, W, C] (logits or means)."""
    return self.decoder(codes)

  def __call__(self, images: jax.Array, key: jax.Array | None = None
               ) -> AEOutput:
    """(decoder outputs [B, H, W, C], codes [B, D]); `key` unused."""
    del key  # Same call signature as the VAE so the trainer has one path.
    codes = self.encode(images)
    return AEOutput(self.decode(codes), codes)

  def embed(self, images: jax.Array) -> jax.Array:
    """Latent code used for plots and kNN, [B, D]."""
    return self.encode(images)

  def loss_terms(self, images: jax.Array, key: jax.Array, likelihood: str,
                 gaussian_scale: float = 1.0) -> dict[str, jax.Array]:
    """Per-example terms {"recon": [B], "kl": zeros [B]}."""
    outputs, _ = self(images, key)
    recon = losses.reconstruction_nll(likelihood, outputs, images,
                                      gaussian_scale)
    return {"recon": recon, "kl": jnp.zeros_like(recon)}
