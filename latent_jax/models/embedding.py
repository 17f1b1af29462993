"""A deterministic embedding network: encoder trunk + linear head (+ decoder).

The parametric UMAP's model. Same trunks and decoders as the VAE/AE, so any
preset (the 5 x 64 MLP `umap_deep`, the conv `small` or `keras_conv`) serves;
the decoder is optional and only built when an inverse map is wanted.
"""

from __future__ import annotations

from typing import Sequence

import jax
from flax import nnx

from latent_jax.models.mlp import MLPEncoder
from latent_jax.models.presets import build_encoder_decoder


class Embedder(nnx.Module):
  """x [B, *input_shape] -> embedding [B, n_components]; optional decoder."""

  def __init__(self, encoder: nnx.Module, decoder: nnx.Module | None,
               n_components: int, *, rngs: nnx.Rngs):
    if n_components < 1:
      raise ValueError(f"n_components must be >= 1, got {n_components}.")
    self.n_components = n_components
    self.encoder = encoder
    self.head = nnx.Linear(encoder.out_features, n_components, rngs=rngs)
    self.decoder = decoder

  def embed(self, inputs: jax.Array) -> jax.Array:
    if isinstance(self.encoder, MLPEncoder):
      # Batch-minor activations throughout (see MLPEncoder.batch_minor).
      features = self.encoder.batch_minor(
          inputs.reshape(inputs.shape[0], -1).T)
      return (self.head.kernel[...].T @ features
              + self.head.bias[...][:, None]).T
    return self.head(self.encoder(inputs))

  def decode(self, embedding: jax.Array) -> jax.Array:
    """embedding [B, n_components] -> decoder outputs [B, *input_shape]."""
    if self.decoder is None:
      raise ValueError("This embedder was built without a decoder.")
    return self.decoder(embedding)

  __call__ = embed


def build_embedder(arch: str, input_shape: Sequence[int], n_components: int,
                   *, with_decoder: bool, rngs: nnx.Rngs,
                   encoder_input_shape: Sequence[int] | None = None
                   ) -> Embedder:
  """An Embedder from a preset name of `latent_jax.models.PRESETS`.

  `encoder_input_shape`: what the encoder sees when it differs from the
  data the decoder reconstructs (inputs projected by PCA first).
  """
  encoder, decoder = build_encoder_decoder(arch, input_shape, n_components,
                                           rngs=rngs)
  if encoder_input_shape is not None:
    encoder, _ = build_encoder_decoder(arch, encoder_input_shape,
                                       n_components, rngs=rngs)
  return Embedder(encoder, decoder if with_decoder else None, n_components,
                  rngs=rngs)
