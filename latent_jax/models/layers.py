"""A transposed convolution computed as a sub-pixel convolution.

`SubPixelConvTranspose` has the same parameters (kernel [k, k, Cin, Cout],
bias [Cout]) and the same outputs as `nnx.ConvTranspose(..., padding="SAME")`
(itself Keras' Conv2DTranspose with 'same' padding), but computes them
differently. XLA lowers a strided transposed convolution to a convolution over
a zero-dilated input, and XLA:CPU runs zero-dilated convolutions much slower
than ordinary ones of the same size. Instead, every
output pixel y[s*i + r] depends on a few input pixels x[i + d] through kernel
tap t = s*d - r + pad, so a stride-1 convolution with s*s*Cout output channels
("phases") followed by a depth-to-space shuffle gives the same result with
dense kernels. For the stride-3, 3x3 layers of the Keras VAE-vs-AE heatmap
notebook's decoder (preset `keras_conv`) each phase has exactly one tap: the
layer is a single matmul.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def _same_padding_before(kernel_size: int, stride: int) -> int:
  # lax.conv_transpose's 'SAME' rule: the zero-dilated input is padded by
  # this much before the kernel's first tap.
  if stride > kernel_size - 1:
    return kernel_size - 1
  return math.ceil((kernel_size + stride - 2) / 2)


class PhaseTaps(NamedTuple):
  """Which kernel tap feeds each (input offset, output phase), for one axis."""
  taps: np.ndarray  # [L, stride] ints in [0, kernel_size]; kernel_size: no tap
  offset_min: int   # input offset d of taps' first row
  offset_max: int   # input offset d of taps' last row (L = max - min + 1)


def phase_taps(kernel_size: int, stride: int) -> PhaseTaps:
  """Kernel tap for each (input offset, output phase), for one axis.

  Output y[s*i + r] = sum_d x[i + d] * w[taps[d - offset_min, r]], where a
  tap equal to `kernel_size` means "no tap" (a zero).
  """
  pad = _same_padding_before(kernel_size, stride)
  offset_min = -(pad // stride)
  offset_max = (kernel_size - 1 + stride - 1 - pad) // stride
  taps = np.full((offset_max - offset_min + 1, stride), kernel_size)
  for offset in range(offset_min, offset_max + 1):
    for phase in range(stride):
      tap = stride * offset - phase + pad
      if 0 <= tap < kernel_size:
        taps[offset - offset_min, phase] = tap
  return PhaseTaps(taps, offset_min, offset_max)


class SubPixelConvTranspose(nnx.Module):
  """'SAME' transposed convolution: [B, H, W, Cin] -> [B, sH, sW, Cout]."""

  def __init__(self, in_features: int, out_features: int,
               kernel_size: int = 3, stride: int = 1, *, rngs: nnx.Rngs):
    self.kernel_size, self.stride = kernel_size, stride
    self.out_features = out_features
    # Same initialisers as nnx.ConvTranspose (lecun-normal kernel, zero bias).
    self.kernel = nnx.Param(nnx.initializers.lecun_normal()(
        rngs.params(), (kernel_size, kernel_size, in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))
    taps, offset_min, offset_max = phase_taps(kernel_size, stride)
    # Static Python data (a tuple), not an array: it must not become state.
    self._taps = tuple(map(tuple, taps.tolist()))
    self._padding = (-offset_min, offset_max)

  def _phase_kernel(self) -> jax.Array:
    """[L, L, Cin, s*s*Cout] dense kernel of the stride-1 convolution."""
    kernel = self.kernel[...]
    padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # "no tap" = 0
    taps = np.asarray(self._taps)
    gathered = padded[taps[:, None, :, None], taps[None, :, None, :]]
    # gathered: [L, L, s, s, Cin, Cout] -> [L, L, Cin, s, s, Cout].
    length, stride = taps.shape
    gathered = gathered.transpose(0, 1, 4, 2, 3, 5)
    return gathered.reshape(length, length, kernel.shape[2],
                            stride * stride * self.out_features)

  def __call__(self, inputs: jax.Array) -> jax.Array:
    batch, height, width, _ = inputs.shape
    stride = self.stride
    phases = jax.lax.conv_general_dilated(
        inputs, self._phase_kernel(), window_strides=(1, 1),
        padding=(self._padding, self._padding),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    phases = phases.reshape(batch, height, width, stride, stride,
                            self.out_features)
    outputs = phases.transpose(0, 1, 3, 2, 4, 5).reshape(
        batch, height * stride, width * stride, self.out_features)
    return outputs + self.bias[...]
