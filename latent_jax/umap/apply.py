"""The fitted network applied to many points: jitted, in fixed-size batches."""

from __future__ import annotations

import functools
from typing import Callable

import jax
import numpy as np
from flax import nnx

from latent_jax import losses
from latent_jax.umap.projection import InputProjection, project


MIN_ROWS = 64  # the smallest padded batch


@functools.lru_cache(maxsize=32)
def compiled_apply(graphdef: nnx.GraphDef, what: str) -> Callable:
  """Jitted `(params, projection, batch) -> outputs` for "embed" or
  "decode:<likelihood>" (projection: the encoder's PCA, or None)."""
  def apply(params, projection, batch):
    model = nnx.merge(graphdef, params)
    if what == "embed":
      return model.embed(project(projection, batch))
    return losses.decoder_mean(what.split(":")[1], model.decode(batch))
  return jax.jit(apply)


def apply_in_batches(model: nnx.Module, what: str, inputs: np.ndarray,
                     projection: InputProjection | None = None,
                     batch_size: int = 4096) -> np.ndarray:
  """`what` ("embed" / "decode:<likelihood>") of inputs [N, ...] -> [N, ...].

  Every batch is padded to `batch_size`, or for fewer inputs to the next
  power of two (at least `MIN_ROWS`): few compiled shapes serve any N, and
  a row's result does not depend on the rows sent with it. Slicing and
  joining happen in NumPy, since eager JAX ops compile once per shape.
  """
  graphdef, params = nnx.split(model)
  apply = compiled_apply(graphdef, what)
  # On the device once, not copied with every batch.
  projection = (jax.device_put(projection) if what == "embed"
                and projection is not None else None)
  batch_size = min(batch_size, max(MIN_ROWS,
                                   1 << (len(inputs) - 1).bit_length()))
  outputs = []
  for start in range(0, len(inputs), batch_size):
    batch = inputs[start:start + batch_size]
    stop = len(batch)
    if stop < batch_size:
      batch = np.concatenate(
          [batch, np.zeros((batch_size - stop, *batch.shape[1:]),
                           batch.dtype)])
    outputs.append(np.asarray(apply(params, projection, batch))[:stop])
  return np.concatenate(outputs)
