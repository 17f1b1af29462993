"""The sub-pixel transposed convolution equals Flax's ConvTranspose."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from latent_jax.models.layers import SubPixelConvTranspose


@pytest.mark.parametrize("stride", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(4, 4), (5, 7)])
def test_subpixel_transposed_conv_equals_flax_conv_transpose(stride, size):
  reference = nnx.ConvTranspose(3, 4, (3, 3), strides=(stride, stride),
                                padding="SAME", rngs=nnx.Rngs(0))
  reference.bias[...] = jnp.arange(4.0)
  layer = SubPixelConvTranspose(3, 4, 3, stride, rngs=nnx.Rngs(1))
  layer.kernel[...] = reference.kernel[...]
  layer.bias[...] = reference.bias[...]
  x = jax.random.normal(jax.random.key(0), (2, *size, 3))
  expected = reference(x)
  assert expected.shape == (2, size[0] * stride, size[1] * stride, 4)
  np.testing.assert_allclose(layer(x), expected, atol=1e-5)
