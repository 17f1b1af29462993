"""Test-set metrics of a VAE/AE, computed in fixed-size batches on device.

Per image: `recon` (negative log-likelihood with one posterior sample, e.g.
Bernoulli BCE summed over pixels), `kl` (summed over latent dims; 0 for an AE),
`neg_elbo` (recon + kl, unweighted by any KL weight), and, for the
reconstruction decoded from the deterministic code (posterior mean), `mse`
(mean over pixels) and `frobenius` (norm of the error image, as the Keras
VAE-vs-AE heatmap notebook reports it). For the Bernoulli likelihood also
`recon_floor`, the entropy of the targets: continuous targets in (0, 1)
(density heatmaps) cannot reach a BCE of 0, so `recon - recon_floor` is what a
model can still improve, and it is comparable across data splits where `recon`
alone is not (each split's test images have their own floor).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from latent_jax import losses



def per_example_metrics(model, images: jax.Array, key: jax.Array,
                        likelihood: str, gaussian_scale: float = 1.0
                        ) -> dict[str, jax.Array]:
  """images [B, H, W, C] -> dict of [B] arrays (see module docstring)."""
  terms = model.loss_terms(images, key, likelihood, gaussian_scale)
  reconstruction = losses.decoder_mean(likelihood,
                                       model.decode(model.embed(images)))
  error = (reconstruction - images).reshape(images.shape[0], -1)
  squared = jnp.sum(jnp.square(error), axis=-1)
  metrics = {
      "recon": terms["recon"],
      "kl": terms["kl"],
      "neg_elbo": terms["recon"] + terms["kl"],
      "mse": squared / error.shape[-1],
      "frobenius": jnp.sqrt(squared),
  }
  if likelihood == "bernoulli":
    flat = images.reshape(images.shape[0], -1)
    entropy = -(jax.scipy.special.xlogy(flat, flat)
                + jax.scipy.special.xlogy(1.0 - flat, 1.0 - flat))
    metrics["recon_floor"] = jnp.sum(entropy, axis=-1)
  return metrics


def map_in_batches(fn: Callable[[jax.Array, jax.Array], Any],
                   inputs: jax.Array, key: jax.Array, batch_size: int) -> Any:
  """Applies `fn(batch, key)` to fixed-size batches of `inputs` on device.

  Pads the last batch (so one compiled shape serves every batch), runs the
  batches with `lax.map`, and returns outputs for the first N rows. `fn`
  returns a pytree of arrays with a leading batch axis. The key of batch i
  is `fold_in(key, i)`.
  """
  count = inputs.shape[0]
  batch_size = max(1, min(batch_size, count))
  num_batches = -(-count // batch_size)
  padding = num_batches * batch_size - count
  padded = jnp.concatenate(
      [inputs, jnp.zeros((padding,) + inputs.shape[1:], inputs.dtype)])
  batches = padded.reshape((num_batches, batch_size) + inputs.shape[1:])
  outputs = jax.lax.map(
      lambda args: fn(args[1], jax.random.fold_in(key, args[0])),
      (jnp.arange(num_batches), batches))
  return jax.tree.map(
      lambda x: x.reshape((num_batches * batch_size,) + x.shape[2:])[:count],
      outputs)


# Cached: the training loop's periodic test evaluation and the final report
# ask for the same program; one jitted function means one compilation.
@functools.lru_cache(maxsize=8)
def make_evaluator(graphdef: nnx.GraphDef, likelihood: str,
                   gaussian_scale: float, batch_size: int) -> Callable:
  """Jitted `evaluate(params, images, key) -> dict of [N] arrays`."""

  @jax.jit
  def evaluate(params, images, key):
    model = nnx.merge(graphdef, params)
    return map_in_batches(
        lambda batch, batch_key: per_example_metrics(
            model, batch, batch_key, likelihood, gaussian_scale),
        images, key, batch_size)

  return evaluate


def summarize(per_example: dict[str, Any], latent_dim: int
              ) -> dict[str, float]:
  """Test-set means per image, `keras_loss`, Frobenius percentiles.

  The Keras VAE-vs-AE heatmap notebook's loss averaged the KL over latent
  dims instead of summing it, so its numbers are `recon + kl / latent_dim`
  (`keras_loss`): the unit in which to compare with that notebook.
  """
  summary = {name: float(np.mean(np.asarray(values)))
             for name, values in per_example.items()}
  summary["keras_loss"] = summary["recon"] + summary["kl"] / latent_dim
  frobenius = np.asarray(per_example["frobenius"])
  summary["frobenius_median"] = float(np.median(frobenius))
  summary["frobenius_p95"] = float(np.percentile(frobenius, 95))
  return summary
