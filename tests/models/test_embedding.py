"""The UMAP embedder's fast MLP path against NumPy."""

import jax.numpy as jnp
import numpy as np
from flax import nnx

from latent_jax.models import build_embedder


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
