"""`python -m experiments.benchmark vae`: the training loop against a bare
jitted `value_and_grad` and this device's matmul rate.

  python -m experiments.benchmark vae [--arch=keras_conv --batch_size=64]

For one preset on the heatmaps, training images/s of
  (a) a bare jitted `value_and_grad` on one fixed on-device batch (XLA's own
      kernel time for this model: the ceiling for any training loop), and
  (b) the full training loop (`train_and_evaluate`: on-device batch
      sampling, optimiser, metrics, logging, checkpoint cadence),
the loop/bare ratio, the model's FLOPs per image from XLA's cost analysis,
the achieved FLOP/s, and that as a fraction of this device's jitted matmul
rate measured in the same run.
"""

from __future__ import annotations

import tempfile

import jax
import jax.numpy as jnp
from absl import flags
from flax import nnx

from experiments.configs import vae_heatmaps
from experiments.timing import matmul_flops_per_sec, timed
from latent_jax.runs.vae import train_and_evaluate
from latent_jax.train.metrics_writer import read_records
from latent_jax.train.setup import create_model, load_configured_dataset

_ARCH = flags.DEFINE_string("arch", "keras_conv", "Model preset to benchmark.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Training batch size.")
_STEPS = flags.DEFINE_integer("steps", 100, "Timed steps of the full loop.")


def benchmark_vae() -> dict[str, float]:
  return measure_vae(_ARCH.value, _BATCH.value, _STEPS.value)


def measure_vae(arch: str, batch_size: int, steps: int, *,
                smoke: bool = False, matmul_rate: float | None = None
                ) -> dict[str, float | str]:
  """The `vae` benchmark for one preset and batch size (see the module
  docstring); `smoke`: the config's smoke data and a 4-step cadence, so
  that a few steps exercise every part; `matmul_rate`: the yardstick if
  already measured (else measured here)."""
  config = vae_heatmaps.get_config(f"arch={arch}" + (",smoke" if smoke
                                                       else ""))
  config.unlock()
  config.train.batch_size = batch_size
  # Cadences far denser than a real run's (defaults: a host sync every 200
  # steps, a checkpoint every 1000), so their cost shows if there is any.
  cadence = 4 if smoke else 25
  config.train.steps_per_call = cadence
  config.train.log_every_steps = cadence
  config.train.checkpoint_every_steps = 2 * cadence
  config.eval.figures = "loss_curves"
  if smoke:  # event files and the IWAE bound cost seconds of a tiny run
    config.log.tensorboard = False
    config.eval.iwae_samples = 0
  dataset = load_configured_dataset(config)

  # (a) bare value_and_grad on one fixed on-device batch.
  model = create_model(config, dataset.image_shape)
  graphdef, params = nnx.split(model)
  batch = jax.device_put(dataset.train_images[:batch_size])

  def loss(params, batch, key):  # the batch is an argument, not a constant
    terms = nnx.merge(graphdef, params).loss_terms(batch, key, "bernoulli")
    return jnp.mean(terms["recon"] + terms["kl"])

  value_and_grad = jax.jit(jax.value_and_grad(loss))
  key = jax.random.key(0)
  def time_bare():
    return timed(lambda: value_and_grad(params, batch, key),
                  max(10, steps // 4))

  bare_before = time_bare()
  cost = value_and_grad.lower(params, batch, key).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):  # older JAX returns one per device
    cost = cost[0]
  flops_per_image = float(cost["flops"]) / batch_size

  # (b) the full loop; time between the first and last log lines, so
  # compilation and the final evaluation are excluded.
  steps_per_epoch = dataset.num_train // batch_size
  config.train.epochs = max(2, -(-(steps + cadence) // steps_per_epoch))
  config.train.eval_every_steps = config.train.epochs * steps_per_epoch
  with tempfile.TemporaryDirectory() as workdir:
    train_and_evaluate(config, workdir)
    records = [r for r in read_records(workdir) if r["split"] == "train"]
  first, last = records[0], records[-1]
  loop_seconds_per_step = ((last["elapsed_sec"] - first["elapsed_sec"])
                           / (last["step"] - first["step"]))
  every = config.train.checkpoint_every_steps
  checkpoints = last["step"] // every - first["step"] // every

  # The machine is shared and noisy: time the bare step before and after the
  # loop and compare the loop with their mean.
  bare_seconds = (bare_before + time_bare()) / 2
  matmul_rate = matmul_rate or matmul_flops_per_sec()
  bare_images = batch_size / bare_seconds
  loop_images = batch_size / loop_seconds_per_step
  return {
      "device": str(jax.devices()[0].device_kind),
      "arch": arch,
      "batch_size": batch_size,
      "bare_value_and_grad_images_per_sec": bare_images,
      "full_loop_images_per_sec": loop_images,
      "loop_over_bare": loop_images / bare_images,
      "timed_loop_steps": last["step"] - first["step"],
      "checkpoints_in_timed_window": checkpoints,
      "model_train_flops_per_image": flops_per_image,
      "achieved_flops_per_sec_bare": flops_per_image * bare_images,
      "achieved_flops_per_sec_loop": flops_per_image * loop_images,
      "matmul_flops_per_sec": matmul_rate,
      "loop_fraction_of_matmul_rate": flops_per_image * loop_images
                                      / matmul_rate,
  }
