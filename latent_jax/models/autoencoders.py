"""VAE and AE: one encoder trunk + latent head(s) + one decoder.

Both share the encoder/decoder classes; they differ only in the head (a
Gaussian posterior with two heads vs one deterministic code head) and in the
loss terms. Modules hold no config objects: build them from presets
(`latent_jax.models.presets.build_model`) or pass your own trunk and decoder.

Latent mask: a model of latent size D with `latent_mask` [D] (ones on the
first d dims, zeros after; `latent_mask(d, D)`) is the d-dimensional model.
Masked dims get the prior's posterior N(0, 1) (zero KL) and are zeroed
before the decoder, so their weights get no gradient and `restrict_latent`
slices the D-model's parameters to the d-model's. Why: one program (one
shape) can train members of different latent sizes side by side.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
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


def latent_mask(active_dims: int, latent_dim: int) -> np.ndarray:
  """[latent_dim] float32: 1 on the first `active_dims` dims, 0 after."""
  if not 1 <= active_dims <= latent_dim:
    raise ValueError(f"A latent mask of {active_dims} dims does not fit a "
                     f"model of latent_dim={latent_dim}: it needs 1 <= dims "
                     f"<= latent_dim (build the model at the largest size).")
  return (np.arange(latent_dim) < active_dims).astype(np.float32)


def _checked_mask(latent_mask: jax.Array | None, latent_dim: int):
  if latent_mask is not None and jnp.shape(latent_mask) != (latent_dim,):
    raise ValueError(f"latent_mask has shape {jnp.shape(latent_mask)}; the "
                     f"model has latent_dim={latent_dim}, so it must be "
                     f"[{latent_dim}] (see latent_mask(d, {latent_dim})).")
  return latent_mask


def restrict_latent(params: Any, small: Any, latent_dim: int,
                    small_dim: int) -> Any:
  """A latent_dim model's parameters cut to those of its `small_dim` model.

  `small`: the small model's state (arrays or `jax.ShapeDtypeStruct`s, e.g.
  from `nnx.eval_shape`), same tree. Every axis where the two differ must
  be latent_dim vs small_dim (its first small_dim entries are kept); any
  other difference raises ValueError: the models are not one architecture
  up to the latent size.
  """
  if jax.tree.structure(params) != jax.tree.structure(small):
    raise ValueError(f"The latent_dim={latent_dim} and latent_dim="
                     f"{small_dim} models have different parameter trees: "
                     "they differ in more than the latent size.")

  def check(path, big, target):
    shape, target_shape = tuple(big.shape), tuple(target.shape)
    if len(shape) != len(target_shape) or any(
        b != t and (b, t) != (latent_dim, small_dim)
        for b, t in zip(shape, target_shape)):
      raise ValueError(
          f"Parameter {jax.tree_util.keystr(path)} has shape {shape} at "
          f"latent_dim={latent_dim} but {target_shape} at "
          f"latent_dim={small_dim}: the models differ in more than the "
          "latent size.")

  jax.tree.map_with_path(check, params, small)
  return jax.tree.map(
      lambda big, target: big[tuple(slice(0, t) for t in target.shape)],
      params, small)


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
    """Reparameterised z = mean + exp(log_variance / 2) * eps, [B, D].

    eps is drawn in float32 whatever the compute dtype, so a bfloat16 pass
    sees the same noise as a float32 one.
    """
    noise = jax.random.normal(key, mean.shape, jnp.float32)
    return (mean + jnp.exp(0.5 * log_variance) * noise).astype(mean.dtype)

  def __call__(self, images: jax.Array, key: jax.Array,
               latent_mask: jax.Array | None = None) -> VAEOutput:
    """(decoder outputs [B, H, W, C], mean, log_variance, z [B, D]).

    `latent_mask` [D]: masked dims are N(0, 1) (mean and log_variance 0)
    and z is 0 there (module doc).
    """
    mask = _checked_mask(latent_mask, self.latent_dim)
    mean, log_variance = self.encode(images)
    if mask is not None:
      mask = mask.astype(mean.dtype)
      mean, log_variance = mean * mask, log_variance * mask
    codes = self.sample_posterior(mean, log_variance, key)
    if mask is not None:
      codes = codes * mask
    return VAEOutput(self.decode(codes), mean, log_variance, codes)

  def embed(self, images: jax.Array) -> jax.Array:
    """Deterministic latent code used for plots and kNN: the posterior mean."""
    return self.encode(images).mean

  def loss_terms(self, images: jax.Array, key: jax.Array, likelihood: str,
                 gaussian_scale: float = 1.0, compute_dtype: Any = None,
                 latent_mask: jax.Array | None = None
                 ) -> dict[str, jax.Array]:
    """Per-example float32 terms {"recon": [B], "kl": [B]}, one sample;
    with `latent_mask` [D] the KL counts the unmasked dims only.

    `compute_dtype` (e.g. bfloat16; the caller casts the parameters): the
    pass runs on images of that dtype; the losses and KL sums take float32
    outputs and the original images, so reductions keep float32 precision.
    """
    inputs = images if compute_dtype is None else images.astype(compute_dtype)
    outputs, mean, log_variance, _ = self(inputs, key, latent_mask)
    f32 = lambda x: x.astype(jnp.float32)
    return {
        "recon": losses.reconstruction_nll(likelihood, f32(outputs), images,
                                           gaussian_scale),
        "kl": losses.gaussian_kl_to_standard_normal(
            f32(mean), f32(log_variance), latent_mask),
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

  def __call__(self, images: jax.Array, key: jax.Array | None = None,
               latent_mask: jax.Array | None = None) -> AEOutput:
    """(decoder outputs [B, H, W, C], codes [B, D]); `key` unused; codes
    are 0 where `latent_mask` [D] is."""
    del key  # Same call signature as the VAE so the trainer has one path.
    mask = _checked_mask(latent_mask, self.latent_dim)
    codes = self.encode(images)
    if mask is not None:
      codes = codes * mask.astype(codes.dtype)
    return AEOutput(self.decode(codes), codes)

  def embed(self, images: jax.Array) -> jax.Array:
    """Latent code used for plots and kNN, [B, D]."""
    return self.encode(images)

  def loss_terms(self, images: jax.Array, key: jax.Array, likelihood: str,
                 gaussian_scale: float = 1.0, compute_dtype: Any = None,
                 latent_mask: jax.Array | None = None
                 ) -> dict[str, jax.Array]:
    """Per-example float32 terms {"recon": [B], "kl": zeros [B]};
    `compute_dtype` and `latent_mask` as for the VAE."""
    inputs = images if compute_dtype is None else images.astype(compute_dtype)
    outputs, _ = self(inputs, key, latent_mask)
    recon = losses.reconstruction_nll(likelihood, outputs.astype(jnp.float32),
                                      images, gaussian_scale)
    return {"recon": recon, "kl": jnp.zeros_like(recon)}
