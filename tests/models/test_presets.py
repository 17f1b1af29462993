"""Model shapes for every preset (RGB 32x32 / 64x64 for conv64); the Keras
presets' layers and parameter counts; construction and input-shape errors."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from latent_jax import build_model
from latent_jax.models import PRESETS, ConvDecoder, ConvEncoder
from latent_jax.models.presets import check_input_shape


def _abstract(*args, rngs=None, **kwargs):
  """`build_model` by abstract evaluation: parameter shapes, no values (the
  Rngs are made inside the traced function, as nnx.eval_shape needs)."""
  del rngs
  return nnx.eval_shape(lambda: build_model(*args, rngs=nnx.Rngs(0),
                                            **kwargs))


def _count(module) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


@pytest.mark.parametrize("arch", sorted(PRESETS))
@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (36, 36, 1)])
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_every_preset_has_the_documented_shapes(arch, shape, kind):
  # Shapes by abstract evaluation (nnx/jax eval_shape): the same traced
  # programs, without initialising parameters or compiling each op.
  model = nnx.eval_shape(lambda: build_model(kind, arch, shape, 4,
                                             rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(model)
  images = jax.ShapeDtypeStruct((3,) + shape, jnp.float32)

  def shape_of(method, *args):
    return jax.eval_shape(
        lambda s, *a: method(nnx.merge(graphdef, s), *a), state, *args)

  outputs = shape_of(lambda m, x: m(x, jax.random.key(0)), images)
  assert outputs[0].shape == (3,) + shape
  assert shape_of(lambda m, x: m.embed(x), images).shape == (3, 4)
  codes = jax.ShapeDtypeStruct((5, 4), jnp.float32)
  assert shape_of(lambda m, z: m.decode(z), codes).shape == (5,) + shape
  terms = shape_of(lambda m, x: m.loss_terms(x, jax.random.key(1),
                                             "bernoulli"), images)
  assert terms["recon"].shape == terms["kl"].shape == (3,)
  if kind == "vae":
    mean, log_variance = shape_of(lambda m, x: m.encode(x), images)
    assert mean.shape == log_variance.shape == (3, 4)


def test_keras_conv_parameter_counts_equal_the_keras_summaries():
  vae = _abstract("vae", "keras_conv", (36, 36, 1), 3, rngs=nnx.Rngs(0))
  encoder = (_count(vae.encoder) + _count(vae.mean_head)
             + _count(vae.log_variance_head))
  assert encoder == 232_454
  assert _count(vae.decoder) == 96_705
  ae = _abstract("ae", "keras_conv", (36, 36, 1), 3, rngs=nnx.Rngs(0))
  assert _count(ae.encoder) + _count(ae.code_head) == 232_259
  assert _count(ae.decoder) == 96_705
  # Keras' intermediate shapes: 36 -> pool 18 -> 9 -> 4; decoder 4 -> 12 -> 36.
  assert vae.encoder.flat_features == 4 * 4 * 64
  assert vae.decoder.start_hw == (4, 4)


def test_keras_mlp_preset_is_the_keras_mlp_notebooks_784_500_300():
  ae = _abstract("ae", "keras_mlp", (28, 28, 1), 2, rngs=nnx.Rngs(0))
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


def test_conv64_round_trips_64x64_rgb_and_32x32():
  for shape in ((64, 64, 3), (32, 32, 3)):
    vae = nnx.eval_shape(lambda: build_model("vae", "conv64", shape, 8,
                                             rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(vae)
    outputs = jax.eval_shape(
        lambda s, x: nnx.merge(graphdef, s)(x, jax.random.key(0)), state,
        jax.ShapeDtypeStruct((2,) + shape, jnp.float32))
    assert outputs[0].shape == (2,) + shape
  assert vae.encoder.flat_features == 2 * 2 * 128  # 32 -> 16 -> 8 -> 4 -> 2


def test_check_input_shape_names_the_arch_and_what_fits():
  check_input_shape("small", (8, 8, 1))
  check_input_shape("keras_mlp", (3, 3, 1))
  with pytest.raises(ValueError, match=r"model.arch='keras_conv'.*image_size"):
    check_input_shape("keras_conv", (3, 3, 1))  # pools shrink 3 -> 0
  with pytest.raises(ValueError, match=r"\[H, W, C\]"):
    check_input_shape("small", (8, 8))
