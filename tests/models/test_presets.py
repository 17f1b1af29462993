"""Model shapes for every preset; the Keras presets' layers and parameter
counts; construction errors."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from latent_jax import build_model
from latent_jax.models import PRESETS, ConvDecoder, ConvEncoder


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


def test_keras_conv_parameter_counts_equal_the_keras_summaries():
  vae = build_model("vae", "keras_conv", (36, 36, 1), 3, rngs=nnx.Rngs(0))
  encoder = (_count(vae.encoder) + _count(vae.mean_head)
             + _count(vae.log_variance_head))
  assert encoder == 232_454
  assert _count(vae.decoder) == 96_705
  ae = build_model("ae", "keras_conv", (36, 36, 1), 3, rngs=nnx.Rngs(0))
  assert _count(ae.encoder) + _count(ae.code_head) == 232_259
  assert _count(ae.decoder) == 96_705
  # Keras' intermediate shapes: 36 -> pool 18 -> 9 -> 4; decoder 4 -> 12 -> 36.
  assert vae.encoder.flat_features == 4 * 4 * 64
  assert vae.decoder.start_hw == (4, 4)


def test_keras_mlp_preset_is_the_keras_mlp_notebooks_784_500_300():
  ae = build_model("ae", "keras_mlp", (28, 28, 1), 2, rngs=nnx.Rngs(0))
  widths = [layer.kernel.shape for layer in ae.encoder.layers]
  assert widths == [(784, 500), (500, 300)]
  assert ae.code_head.kernel.shape == (300, 2)
  assert [l.kernel.shape for l in ae.decoder.layers] == [(2, 300), (300, 500)]
  assert ae.decoder.to_output.kernel.shape == (500, 784)


def test_bad_construction_arguments():
  with pytest.raises(ValueError, match="latent_dim"):
    build_model("vae", "small", (36, 36, 1), 0, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="keras_conv"):
    build_model("vae", "nope", (36, 36, 1), 2, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="too small"):
    ConvEncoder((2, 2, 1), (8, 8), (2, 2), (True, True), (), rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="equal lengths"):
    ConvDecoder(2, (8, 8, 1), 4, (8,), (2, 2), rngs=nnx.Rngs(0))
