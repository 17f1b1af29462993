"""The UMAP embedder's fast MLP path against NumPy."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from latent_jax.models import build_embedder
from latent_jax.models.mlp import MLPEncoder


def test_embedder_batch_minor_path_equals_numpy_mlp():
  # Embedder.embed runs MLP trunks on transposed activations (faster on
  # XLA:CPU); it must compute x -> relu(x W + b) ... -> head, as in NumPy.
  model = build_embedder("umap_mlp", (8, 8), 3, with_decoder=False,
                         rngs=nnx.Rngs(0))
  x = np.random.default_rng(0).normal(size=(5, 8, 8)).astype(np.float32)
  h = x.reshape(5, -1).astype(np.float64)
  for layer in model.encoder.layers:
    h = np.maximum(h @ np.asarray(layer.kernel[...], np.float64)
                   + np.asarray(layer.bias[...], np.float64), 0.0)
  expected = (h @ np.asarray(model.head.kernel[...], np.float64)
              + np.asarray(model.head.bias[...], np.float64))
  np.testing.assert_allclose(model.embed(jnp.asarray(x)), expected,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(model.embed(jnp.asarray(x)),
                             model.head(model.encoder(jnp.asarray(x))),
                             rtol=1e-5, atol=1e-6)


def test_umap_deep_is_five_silu_layers_as_numpy_computes_them():
  # ParametricUMAP's default encoder: x -> silu(x W + b) five times ->
  # head, on both the batch-minor path and the plain one.
  model = build_embedder("umap_deep", (50,), 2, with_decoder=False,
                         rngs=nnx.Rngs(1))
  assert [layer.kernel.shape[1] for layer in model.encoder.layers] == [64] * 5
  x = np.random.default_rng(1).normal(size=(7, 50)).astype(np.float32)
  h = x.astype(np.float64)
  for layer in model.encoder.layers:
    h = h @ np.asarray(layer.kernel[...], np.float64) + np.asarray(
        layer.bias[...], np.float64)
    h = h / (1.0 + np.exp(-h))  # SiLU
  expected = (h @ np.asarray(model.head.kernel[...], np.float64)
              + np.asarray(model.head.bias[...], np.float64))
  np.testing.assert_allclose(model.embed(jnp.asarray(x)), expected,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(model.head(model.encoder(jnp.asarray(x))),
                             expected, rtol=1e-5, atol=1e-5)


def test_unknown_activation_is_refused_with_the_known_names():
  with pytest.raises(ValueError, match=r"Unknown activation 'swish'; use "
                     r"one of \['elu', 'gelu', 'relu', 'silu', 'tanh'\]"):
    MLPEncoder((4,), (8,), activation="swish", rngs=nnx.Rngs(0))
