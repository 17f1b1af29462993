"""Benchmark (not a test): M members in one program vs M runs one by one.

  python -m experiments.benchmark ensemble [--members=8 --steps=100]

Trains `--members` members of the default heatmap VAE (`vae_heatmaps.py`:
the `small` preset, latent 3, batch 64; KL weights x seeds) for `--steps`
steps as one ensemble program, and the same members as single models one
after another, each built and compiled afresh as a separate run would be
(their chunks interleaved with the ensemble's, so that both see the same
background load on a shared machine).
Both use the training loop's own step (`make_train_chunk`, the chunk mode
and convolution batching that "auto" picks for this device) on the same
device and the same training images. Prints wall times (compilation
included) and their ratio, and steady-state images/s per member (median
over chunks of `--chunk` steps, compilation excluded; for the sequential
runs a single run's rate / M, as M runs share the device) and their ratio.

On a 2-core CPU the two come out about even (README, "Measured"): XLA:CPU
runs each member's convolutions at the rate it runs one model's, so the
ensemble can only gain the cores that one run leaves idle; on a CPU the
benchmark prints the cores each program keeps busy (process CPU seconds per
wall second) and the bound that puts on the gain. On a
GPU or TPU, where one small VAE leaves the device mostly idle, run the same
command to measure the gain.
"""

from __future__ import annotations

import os
import resource
import statistics
import time

import jax
from absl import flags
from flax import nnx

from experiments.configs import vae_heatmaps
from latent_jax.train.ensemble import (Member, member_keys,
                                       resolve_conv_batching, stack_members)
from latent_jax.train.optimizers import make_optimizer
from latent_jax.train.setup import create_model, load_configured_dataset
from latent_jax.train.chunk import resolve_chunk_mode
from latent_jax.train.step import init_ensemble_state, make_train_chunk

_MEMBERS = flags.DEFINE_integer("members", 8, "Ensemble members.")
_CHUNK = flags.DEFINE_integer("chunk", 25, "Steps per host call (timed "
                              "unit).")
_CONV_BATCHING = flags.DEFINE_string(
    "conv_batching", "auto", "ensemble.conv_batching for the ensemble: "
    "auto, per_member or grouped.")


def _process_cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


class _Run:
  """One training program (an ensemble, or one single model) being timed."""

  def __init__(self, config, dataset, images, members, conv_batching):
    started = time.perf_counter()
    optimizer, _ = make_optimizer(config.train, 1000)
    models = [create_model(config, dataset.image_shape, m.seed)
              for m in members]
    self.state = init_ensemble_state(
        stack_members([nnx.split(model)[1] for model in models]), optimizer)
    self.chunk = make_train_chunk(
        nnx.split(models[0])[0], optimizer,
        likelihood=config.loss.likelihood,
        gaussian_scale=config.loss.gaussian_scale,
        kl_warmup_steps=config.loss.kl_warmup_steps,
        batch_size=config.train.batch_size, num_train=dataset.num_train,
        chunk_mode=config.train.chunk_mode, conv_batching=conv_batching)
    self.images, self.keys = images, member_keys(config, members)
    self.setup_seconds = time.perf_counter() - started
    self.chunk_seconds = []
    self.chunk_cpu_seconds = []

  def run(self, steps: int) -> None:
    cpu_started = _process_cpu_seconds()
    started = time.perf_counter()
    # The first three keys: no latent masks in these ensembles.
    self.state, metrics = self.chunk(self.state, self.images,
                                     *self.keys[:3], steps)
    jax.block_until_ready(metrics)
    self.chunk_seconds.append(time.perf_counter() - started)
    self.chunk_cpu_seconds.append(_process_cpu_seconds() - cpu_started)

  def cores_used(self) -> float:
    """Steady-state CPU seconds per wall second (compiling chunk left out)."""
    return (sum(self.chunk_cpu_seconds[1:])
            / max(sum(self.chunk_seconds[1:]), 1e-9))

  @property
  def wall_seconds(self) -> float:
    return self.setup_seconds + sum(self.chunk_seconds)


def benchmark_ensemble() -> dict[str, float | str]:
  config = vae_heatmaps.get_config()
  steps = flags.FLAGS.steps
  chunk_steps = _CHUNK.value
  count = _MEMBERS.value
  weights = (0.25, 0.5, 1.0, 2.0)
  members = [Member(i, weights[i % len(weights)], i // len(weights))
             for i in range(count)]
  dataset = load_configured_dataset(config)
  images = jax.device_put(dataset.train_images)
  conv_batching = resolve_conv_batching(_CONV_BATCHING.value)

  ensemble = _Run(config, dataset, images, members, conv_batching)
  singles = [_Run(config, dataset, images,
                  [Member(0, m.kl_weight, m.seed)], conv_batching)
             for m in members]
  # Chunk by chunk, the ensemble then each single run: on a shared machine
  # both see the same background load. The first chunk compiles.
  for taken in range(0, steps, chunk_steps):
    for run in [ensemble] + singles:
      run.run(min(chunk_steps, steps - taken))
  ensemble_wall = ensemble.wall_seconds
  sequential_wall = sum(run.wall_seconds for run in singles)
  ensemble_chunks = ensemble.chunk_seconds[1:]
  sequential_chunks = [t for run in singles for t in run.chunk_seconds[1:]]

  batch = config.train.batch_size
  # Every member sees every batch: a member's rate is the program's step
  # rate times the batch. Run one after another, M single runs share the
  # device's time, so each member trains at 1/M of a single run's rate.
  ensemble_rate = batch * chunk_steps / statistics.median(ensemble_chunks)
  single_rate = batch * chunk_steps / statistics.median(sequential_chunks)
  sequential_rate = single_rate / count
  cores_single = statistics.mean(run.cores_used() for run in singles)
  results = {
      "device": str(jax.devices()[0].device_kind),
      "chunk_mode": resolve_chunk_mode(config.train.chunk_mode),
      "conv_batching": conv_batching,
      "members": count,
      "steps_per_member": steps,
      "batch_size": batch,
      "ensemble_wall_seconds": ensemble_wall,
      "sequential_wall_seconds": sequential_wall,
      "wall_time_ratio_sequential_over_ensemble":
          sequential_wall / ensemble_wall,
      "single_run_images_per_sec": single_rate,
      "sequential_images_per_sec_per_member": sequential_rate,
      "ensemble_images_per_sec_per_member": ensemble_rate,
      "images_per_sec_per_member_ratio_ensemble_over_sequential":
          ensemble_rate / sequential_rate,
  }
  if jax.devices()[0].platform == "cpu":
    # On a CPU, a program that already keeps every core busy at the same
    # per-convolution rate cannot run M members more than
    # cores / cores-used-by-one-run times faster than M runs in turn.
    results.update({
        "cpu_cores": os.cpu_count(),
        "single_run_cores_used": cores_single,
        "ensemble_cores_used": ensemble.cores_used(),
        "ensemble_gain_bound_from_idle_cores":
            os.cpu_count() / max(cores_single, 1e-9),
    })
  return results
