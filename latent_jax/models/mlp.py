"""Fully connected encoder trunk and decoder.

The shape of the Keras MLP-autoencoder notebook's model (784-500-300) is the
`keras_mlp` preset; umap-learn's 3 x 100 encoder is `umap_mlp`, and
ParametricUMAP's default 5 x 64 SiLU encoder is `umap_deep`.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
from flax import nnx

# The encoder's hidden-layer activations, by name (a preset's `activation`).
ACTIVATIONS = {"relu": nnx.relu, "silu": nnx.silu, "gelu": nnx.gelu,
               "elu": nnx.elu, "tanh": nnx.tanh}


class MLPEncoder(nnx.Module):
  """MLP trunk: [B, H, W, C] (or [B, F]) inputs -> [B, hidden[-1]] features.

  Inputs are flattened, then pass through dense layers `hidden`, each
  followed by `activation` (a name of `ACTIVATIONS`).
  """

  def __init__(self, input_shape: Sequence[int], hidden: Sequence[int], *,
               rngs: nnx.Rngs, activation: str = "relu"):
    if not hidden:
      raise ValueError("MLPEncoder needs at least one hidden layer.")
    if activation not in ACTIVATIONS:
      raise ValueError(f"Unknown activation {activation!r}; use one of "
                       f"{sorted(ACTIVATIONS)}.")
    self.activation = activation  # a name: the module stays picklable
    self.input_shape = tuple(int(s) for s in input_shape)
    in_features = math.prod(self.input_shape)
    layers = []
    for width in hidden:
      layers.append(nnx.Linear(in_features, width, rngs=rngs))
      in_features = width
    self.layers = nnx.List(layers)
    self.out_features = in_features

  def __call__(self, inputs: jax.Array) -> jax.Array:
    """inputs: [B, *input_shape] -> features [B, out_features]."""
    x = inputs.reshape(inputs.shape[0], -1)
    act = ACTIVATIONS[self.activation]
    for layer in self.layers:
      x = act(layer(x))
    return x

  def batch_minor(self, inputs_t: jax.Array) -> jax.Array:
    """The same map on transposed activations: [F, B] -> [out_features, B].

    With the batch as the minor (contiguous) axis, XLA:CPU runs a narrow
    MLP's training step (such as the parametric UMAP's 5 x 64 encoder with
    its head) faster than with batch-major activations.
    """
    h = inputs_t
    act = ACTIVATIONS[self.activation]
    for layer in self.layers:
      h = act(layer.kernel[...].T @ h + layer.bias[...][:, None])
    return h


class MLPDecoder(nnx.Module):
  """MLP decoder: [B, latent_dim] -> [B, *output_shape] outputs.

  ReLU dense layers `hidden`, then a linear layer to every output value (no
  activation: Bernoulli logits or Gaussian means), reshaped to the image.
  """

  def __init__(self, latent_dim: int, output_shape: Sequence[int],
               hidden: Sequence[int], *, rngs: nnx.Rngs):
    self.output_shape = tuple(int(s) for s in output_shape)
    in_features = latent_dim
    layers = []
    for width in hidden:
      layers.append(nnx.Linear(in_features, width, rngs=rngs))
      in_features = width
    self.layers = nnx.List(layers)
    self.to_output = nnx.Linear(in_features, math.prod(self.output_shape),
                                rngs=rngs)

  def __call__(self, codes: jax.Array) -> jax.Array:
    """codes: [B, latent_dim] -> outputs [B, *output_shape]."""
    x = codes
    for layer in self.layers:
      x = nnx.relu(layer(x))
    return self.to_output(x).reshape(codes.shape[0], *self.output_shape)
