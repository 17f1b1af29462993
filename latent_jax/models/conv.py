"""Convolutional encoder trunk and decoder, configurable by channels and strides.

Both work for any image size (8x8 digits, 28x28 MNIST, 36x36 heatmaps, 32x32
or 64x64 RGB) and channel count: the
encoder computes its flattened size from the input shape, and the decoder
starts from the smallest grid that its strides upsample to at least the output
size, then centre-crops (36 -> 36 exactly for the Keras VAE-vs-AE heatmap
notebook's model; 36 -> 28 for MNIST with the same strides).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
from flax import nnx

from latent_jax.models.layers import SubPixelConvTranspose


def _same_conv_size(size: int, stride: int) -> int:
  return math.ceil(size / stride)


def encoder_output_hw(input_hw: Sequence[int], strides: Sequence[int],
                      pool: Sequence[bool]) -> list[tuple[int, int]]:
  """(H, W) after each conv layer (and its pool) of a `ConvEncoder`.

  A 'SAME' conv with stride s maps n -> ceil(n / s); a 2x2 'VALID' pool
  n -> n // 2. A size below 1 means the input is too small for the trunk.
  """
  height, width = (int(s) for s in input_hw)
  sizes = []
  for stride, pooled in zip(strides, pool):
    height, width = (_same_conv_size(height, stride),
                     _same_conv_size(width, stride))
    if pooled:
      height, width = height // 2, width // 2
    sizes.append((height, width))
  return sizes


class ConvEncoder(nnx.Module):
  """Conv trunk: [B, H, W, C] images -> [B, hidden[-1]] features.

  Layer i is a 3x3 'SAME' convolution with `features[i]` channels and stride
  `strides[i]`, a ReLU, and (when `pool[i]`) a 2x2 max-pool with stride 2 and
  'VALID' padding (Keras' MaxPool2D default, so 9 -> 4 as in the Keras
  VAE-vs-AE heatmap notebook). The
  feature map is flattened and passed through ReLU dense layers `hidden`.
  The latent heads (mean/log-variance or code) live in the VAE/AE.
  """

  def __init__(self, input_shape: Sequence[int], features: Sequence[int],
               strides: Sequence[int], pool: Sequence[bool],
               hidden: Sequence[int], *, rngs: nnx.Rngs):
    if not (len(features) == len(strides) == len(pool)):
      raise ValueError("features, strides and pool must have equal lengths, "
                       f"got {len(features)}, {len(strides)}, {len(pool)}.")
    channels = input_shape[2]
    self.input_shape = tuple(int(s) for s in input_shape)
    self.pool = tuple(bool(p) for p in pool)
    sizes = encoder_output_hw(input_shape[:2], strides, pool)
    if min(min(hw) for hw in sizes) < 1:
      raise ValueError(f"Input shape {tuple(input_shape)} is too small for "
                       f"{len(sizes)} conv layers with strides {strides} "
                       f"and pooling {pool}: use fewer downsampling layers.")
    height, width = sizes[-1]
    convs = []
    in_channels = channels
    for out_channels, stride in zip(features, strides):
      convs.append(nnx.Conv(in_channels, out_channels, (3, 3),
                            strides=(stride, stride), padding="SAME",
                            rngs=rngs))
      in_channels = out_channels
    self.convs = nnx.List(convs)
    self.flat_features = height * width * in_channels
    dense = []
    in_features = self.flat_features
    for width_ in hidden:
      dense.append(nnx.Linear(in_features, width_, rngs=rngs))
      in_features = width_
    self.dense = nnx.List(dense)
    self.out_features = in_features

  def __call__(self, images: jax.Array) -> jax.Array:
    """images: [B, H, W, C] -> features [B, out_features]."""
    x = images
    for conv, pooled in zip(self.convs, self.pool):
      x = nnx.relu(conv(x))
      if pooled:
        x = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2),
                         padding="VALID")
    x = x.reshape(x.shape[0], -1)
    for layer in self.dense:
      x = nnx.relu(layer(x))
    return x


class ConvDecoder(nnx.Module):
  """Conv decoder: [B, latent_dim] codes -> [B, H, W, C] decoder outputs.

  ReLU dense layers `hidden`, a ReLU dense projection to a
  `start_hw x start_hw x start_features` grid, 3x3 'SAME' transposed
  convolutions (`features[i]` channels, stride `strides[i]`, ReLU), then a
  final 3x3 transposed convolution to C channels without activation: the
  output is Bernoulli logits or a Gaussian mean, as the likelihood decides.
  The transposed convolutions are `SubPixelConvTranspose`: the same
  parameters and outputs as Keras' Conv2DTranspose(padding="same"), computed
  without XLA:CPU's slow zero-dilated convolution.
  """

  def __init__(self, latent_dim: int, output_shape: Sequence[int],
               start_features: int, features: Sequence[int],
               strides: Sequence[int], hidden: Sequence[int] = (), *,
               rngs: nnx.Rngs):
    if len(features) != len(strides):
      raise ValueError("features and strides must have equal lengths, got "
                       f"{len(features)} and {len(strides)}.")
    height, width, channels = output_shape
    self.output_shape = tuple(int(s) for s in output_shape)
    upsample = math.prod(strides)
    self.start_hw = (math.ceil(height / upsample), math.ceil(width / upsample))
    self.start_features = start_features
    dense = []
    in_features = latent_dim
    for width_ in hidden:
      dense.append(nnx.Linear(in_features, width_, rngs=rngs))
      in_features = width_
    self.dense = nnx.List(dense)
    self.project = nnx.Linear(
        in_features, self.start_hw[0] * self.start_hw[1] * start_features,
        rngs=rngs)
    deconvs = []
    in_channels = start_features
    for out_channels, stride in zip(features, strides):
      deconvs.append(SubPixelConvTranspose(in_channels, out_channels, 3,
                                           stride, rngs=rngs))
      in_channels = out_channels
    self.deconvs = nnx.List(deconvs)
    self.to_output = SubPixelConvTranspose(in_channels, channels, 3, 1,
                                           rngs=rngs)

  def __call__(self, codes: jax.Array) -> jax.Array:
    """codes: [B, latent_dim] -> outputs [B, H, W, C] (logits or means)."""
    x = codes
    for layer in self.dense:
      x = nnx.relu(layer(x))
    x = nnx.relu(self.project(x))
    x = x.reshape(x.shape[0], *self.start_hw, self.start_features)
    for deconv in self.deconvs:
      x = nnx.relu(deconv(x))
    x = self.to_output(x)
    height, width, _ = self.output_shape
    top = (x.shape[1] - height) // 2
    left = (x.shape[2] - width) // 2
    return x[:, top:top + height, left:left + width, :]
