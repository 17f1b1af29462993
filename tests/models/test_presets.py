"""Model shapes for every preset, and seed 002's parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from latent_jax import AE, VAE, build_model
from latent_jax.models import PRESETS, ConvDecoder, ConvEncoder, build_embedder


def _count(module) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


@pytest.mark.parametrize("arch", sorted(PRESETS))
@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (36, 36, 1)])
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_every_preset_has_the_documented_shapes(arch, shape, kind):
  model = build_model(kind, arch, shape, 4, rngs=nnx.Rngs(0))
  images = jnp.zeros((3,) + shape)
  outputs = model(images, jax.random.key(0))
  assert outputs[0].shape == (3,) + shape
  assert model.embed(images).shape == (3, 4)
  assert model.decode(jnp.zeros((5, 4))).shape == (5,) + shape
  terms = model.loss_terms(images, jax.random.key(1), "bernoulli")
  assert terms["recon"].shape == terms["kl"].shape == (3,)
  if kind == "vae":
    mean, log_variance = model.encode(images)
    assert mean.shape == log_variance.shape == (3, 4)


def test_seed002_parameter_counts_equal_the_keras_summaries():
  vae = build_model("vae", "seed002", (36, 36, 1), 3, rngs=nnx.Rngs(0))
  encoder = (_count(vae.encoder) + _count(vae.mean_head)
             + _count(vae.log_variance_head))
  assert encoder == 232_454
  assert _count(vae.decoder) == 96_705
  ae = build_model("ae", "seed002", (36, 36, 1), 3, rngs=nnx.Rngs(0))
  assert _count(ae.encoder) + _count(ae.code_head) == 232_259
  assert _count(ae.decoder) == 96_705
  # Keras' intermediate shapes: 36 -> pool 18 -> 9 -> 4; decoder 4 -> 12 -> 36.
  assert vae.encoder.flat_features == 4 * 4 * 64
  assert vae.decoder.start_hw == (4, 4)


def test_mlp_preset_is_seed004_784_500_300():
  ae = build_model("ae", "mlp_seed004", (28, 28, 1), 2, rngs=nnx.Rngs(0))
  widths = [layer.kernel.shape for layer in ae.encoder.layers]
  assert widths == [(784, 500), (500, 300)]
  assert ae.code_head.kernel.shape == (300, 2)
  assert [l.kernel.shape for l in ae.decoder.layers] == [(2, 300), (300, 500)]
  assert ae.decoder.to_output.kernel.shape == (500, 784)


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


def test_vae_reparameterisation_uses_log_variance():
  vae = build_model("vae", "small", (8, 8, 1), 2, rngs=nnx.Rngs(0))
  mean = jnp.array([[1.0, -2.0]])
  log_variance = jnp.log(jnp.array([[4.0, 0.25]]))
  keys = jax.random.split(jax.random.key(0), 20000)
  z = jax.vmap(lambda k: vae.sample_posterior(mean, log_variance, k))(keys)
  np.testing.assert_allclose(z.mean(0)[0], [1.0, -2.0], atol=0.05)
  np.testing.assert_allclose(z.std(0)[0], [2.0, 0.5], rtol=0.03)


def test_bad_construction_arguments():
  with pytest.raises(ValueError, match="latent_dim"):
    build_model("vae", "small", (36, 36, 1), 0, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="seed002"):
    build_model("vae", "nope", (36, 36, 1), 2, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="too small"):
    ConvEncoder((2, 2, 1), (8, 8), (2, 2), (True, True), (), rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="equal lengths"):
    ConvDecoder(2, (8, 8, 1), 4, (8,), (2, 2), rngs=nnx.Rngs(0))


def test_public_imports():
  assert VAE.__name__ == "VAE" and AE.__name__ == "AE"
