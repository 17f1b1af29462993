"""Flax NNX encoders, decoders, VAE and AE, and named presets."""

from latent_jax.models.autoencoders import (AE, VAE, AEOutput, Posterior,
                                            VAEOutput)
from latent_jax.models.conv import ConvDecoder, ConvEncoder
from latent_jax.models.embedding import Embedder, build_embedder
from latent_jax.models.mlp import MLPDecoder, MLPEncoder
from latent_jax.models.presets import PRESETS, EncoderDecoder, build_model

__all__ = ["AE", "AEOutput", "VAE", "VAEOutput", "ConvDecoder", "ConvEncoder",
           "Embedder", "EncoderDecoder", "MLPDecoder", "MLPEncoder",
           "Posterior", "PRESETS", "build_embedder", "build_model"]
