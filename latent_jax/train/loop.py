"""`train_and_evaluate(config, workdir)`: the training loop, top to bottom.

Phases: config -> data -> model -> restore -> step -> loop -> evaluate.
Running the same command on the same workdir resumes from the latest
checkpoint; a finished run only re-evaluates. SIGTERM saves a checkpoint and
stops; a NaN/Inf loss stops with the step and the term that went bad, keeping
the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging
from flax import nnx

from latent_jax.evaluation.metrics import make_evaluator, summarize
from latent_jax.evaluation.report import evaluate_and_plot, write_eval_json
from latent_jax.train import setup
from latent_jax.train.checkpointing import Checkpointer
from latent_jax.train.config_checks import selected_figures, validate_config
from latent_jax.train.metrics_writer import MetricsWriter, read_records
from latent_jax.train.optimizers import make_optimizer
from latent_jax.train.step import (init_train_state, make_train_chunk,
                                   nonfinite_terms)

CONFIG_FILE = "config.json"
# Changing these on an existing workdir would mix two different runs.
RUN_DEFINING_KEYS = ("seed", "data", "model", "loss", "train.batch_size")


class Preempted(Exception):
  """Raised after SIGTERM once the state has been checkpointed."""


class NonFiniteLossError(FloatingPointError):
  """A loss term or gradient became NaN/Inf."""


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def _check_same_run(config_dict: dict[str, Any], workdir: str) -> None:
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return
  with open(path) as file:
    previous = _flatten(json.load(file))
  current = _flatten(json.loads(json.dumps(config_dict)))
  changed = sorted(
      key for key in set(previous) | set(current)
      if key.startswith(RUN_DEFINING_KEYS)
      and previous.get(key) != current.get(key))
  if changed:
    details = ", ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}"
                        for k in changed)
    raise ValueError(
        f"{workdir} holds a run with a different config ({details}). Resume "
        "it with its own config, or use a new --workdir.")


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run wrote to `<workdir>/config.json`."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"No {CONFIG_FILE} in {workdir}: is it the --workdir of a training "
        "run? Train first with python -m experiments.train.")
  with open(path) as file:
    return ml_collections.ConfigDict(json.load(file))


@contextlib.contextmanager
def _sigterm_flag():
  """Yields an Event set on SIGTERM (the loop checkpoints, then stops)."""
  event = threading.Event()
  if threading.current_thread() is not threading.main_thread():
    yield event
    return
  previous = signal.signal(signal.SIGTERM, lambda *_: event.set())
  try:
    yield event
  finally:
    signal.signal(signal.SIGTERM, previous)


def _format_seconds(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  return f"{minutes}m{seconds:02d}s"


def _evaluate(model, dataset, config, workdir: str, step: int,
              figures=None, exploration=None) -> dict[str, float]:
  summary = evaluate_and_plot(
      model, test_images=dataset.test_images,
      test_labels=dataset.test_labels, label_names=dataset.label_names,
      categorical=dataset.categorical, train_images=dataset.train_images,
      train_labels=dataset.train_labels,
      likelihood=config.loss.likelihood,
      gaussian_scale=config.loss.gaussian_scale,
      batch_size=config.eval.batch_size,
      key=jax.random.key(config.seed + 1), out_dir=workdir,
      figures=figures or selected_figures(config.eval.figures),
      records=read_records(workdir), num_images=config.eval.num_images,
      # .get: runs written before this setting existed evaluate without it.
      iwae_samples=config.eval.get("iwae_samples", 0),
      exploration=exploration)
  if jax.process_index() == 0:
    write_eval_json(workdir, step, summary)
  logging.info("Evaluation at step %d: %s", step,
               " ".join(f"{k}={v:.4g}" for k, v in summary.items()))
  return summary


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> dict[str, float]:
  """Trains (or resumes) the run in `workdir`, then evaluates it.

  Returns the final test-set metrics (also written to `<workdir>/eval.json`).
  """
  # --- Config -------------------------------------------------------------
  validate_config(config)
  os.makedirs(workdir, exist_ok=True)
  config_dict = config.to_dict()
  _check_same_run(config_dict, workdir)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, CONFIG_FILE), "w") as file:
      json.dump(config_dict, file, indent=2, default=list)

  # --- Data ---------------------------------------------------------------
  dataset = setup.load_configured_dataset(config)
  setup.check_batch_size(config, dataset)
  train_images = jax.device_put(dataset.train_images)  # once, for the run
  test_images = jax.device_put(dataset.test_images)
  steps_per_epoch = dataset.num_train // config.train.batch_size
  total_steps = config.train.epochs * steps_per_epoch
  eval_every = config.train.eval_every_steps or steps_per_epoch
  logging.info("Data %s: %d train / %d test images of shape %s; %d steps "
               "(%d per epoch).", dataset.name, dataset.num_train,
               dataset.num_test, dataset.image_shape, total_steps,
               steps_per_epoch)

  # --- Model and optimiser -------------------------------------------------
  model = setup.create_model(config, dataset.image_shape)
  graphdef, params = nnx.split(model)
  optimizer, schedule = make_optimizer(config.train, total_steps)
  state = init_train_state(params, optimizer)

  # --- Restore ------------------------------------------------------------
  checkpointer = Checkpointer(workdir, keep=config.train.keep_checkpoints)
  writer = MetricsWriter(workdir)
  restored = checkpointer.restore_latest(state)
  if restored is not None:
    state = restored[0]
    logging.info("Resumed from the checkpoint at step %d.", int(state.step))
  writer.truncate_after(int(state.step))

  # --- Step ---------------------------------------------------------------
  train_chunk = make_train_chunk(
      graphdef, optimizer, likelihood=config.loss.likelihood,
      gaussian_scale=config.loss.gaussian_scale,
      kl_warmup_steps=config.loss.kl_warmup_steps,
      batch_size=config.train.batch_size, num_train=dataset.num_train,
      chunk_mode=config.train.chunk_mode)
  run_key = jax.random.key(config.seed)
  data_key, model_key = jax.random.fold_in(run_key, 0), jax.random.fold_in(
      run_key, 1)
  kl_weight = jnp.float32(config.loss.kl_weight)
  test_evaluator = make_evaluator(graphdef, config.loss.likelihood,
                                  config.loss.gaussian_scale,
                                  config.eval.batch_size)

  # --- Loop ---------------------------------------------------------------
  step = int(state.step)
  cadences = (config.train.log_every_steps, eval_every,
              config.train.checkpoint_every_steps)
  # Host-side sums of chunk metrics (weighted by steps) since the last log.
  logged_terms = ("loss", "recon", "kl", "neg_elbo", "grad_norm")
  pending_sums, pending_steps = dict.fromkeys(logged_terms, 0.0), 0
  train_seconds = 0.0
  loop_started = time.perf_counter()

  def save(at_step, state):
    checkpointer.save(at_step, state, {"step": at_step,
                                       "epoch": at_step / steps_per_epoch})

  with _sigterm_flag() as sigterm:
    while step < total_steps:
      # Run up to the next log/eval/checkpoint boundary, in one device call.
      boundary = min([total_steps] + [(step // c + 1) * c for c in cadences])
      num_steps = min(boundary - step, config.train.steps_per_call)
      started = time.perf_counter()
      state, metrics = train_chunk(state, train_images, data_key, model_key,
                                   kl_weight, num_steps, sigterm.is_set)
      metrics = jax.device_get(metrics)
      num_steps = int(metrics["num_steps"])  # fewer if SIGTERM cut it short
      train_seconds += time.perf_counter() - started
      if metrics["first_nonfinite_step"] >= 0:
        bad_step = int(metrics["first_nonfinite_step"])
        terms = ", ".join(nonfinite_terms(int(metrics["nonfinite_bits"])))
        last = checkpointer.latest_step()
        checkpointer.close()
        raise NonFiniteLossError(
            f"Non-finite {terms} at step {bad_step}; training stopped. The "
            f"last good checkpoint (step {last}) is kept in "
            f"{checkpointer.directory}. Lower train.learning_rate or set "
            "train.grad_clip_norm, then rerun to resume.")
      step += num_steps
      for name in logged_terms:
        pending_sums[name] += float(metrics[name]) * num_steps
      pending_steps += num_steps

      # (A chunk cut short by SIGTERM before its first step changes nothing.)
      at_end = step == total_steps
      if pending_steps and (step % config.train.log_every_steps == 0
                            or at_end):
        averages = {k: v / pending_steps for k, v in pending_sums.items()}
        steps_per_sec = pending_steps / max(train_seconds, 1e-9)
        averages.update(
            epoch=step / steps_per_epoch,
            learning_rate=float(schedule(step)),
            steps_per_sec=steps_per_sec,
            images_per_sec=steps_per_sec * config.train.batch_size,
            elapsed_sec=time.perf_counter() - loop_started)
        writer.write(step, "train", averages)
        logging.info(
            "step %d/%d | loss %.4g recon %.4g kl %.4g | %.1f steps/s | "
            "ETA %s", step, total_steps, averages["loss"], averages["recon"],
            averages["kl"], steps_per_sec,
            _format_seconds((total_steps - step) / max(steps_per_sec, 1e-9)))
        pending_sums = dict.fromkeys(logged_terms, 0.0)
        pending_steps, train_seconds = 0, 0.0

      if num_steps and (step % eval_every == 0 or at_end):
        test_metrics = summarize(
            test_evaluator(state.params, test_images,
                           jax.random.key(config.seed + 1)),
            config.model.latent_dim)
        writer.write(step, "test", test_metrics)
        logging.info("test at step %d | neg_elbo %.4g recon %.4g kl %.4g",
                     step, test_metrics["neg_elbo"], test_metrics["recon"],
                     test_metrics["kl"])

      if step % config.train.checkpoint_every_steps == 0 or at_end:
        save(step, state)
      if sigterm.is_set():
        save(step, state)
        checkpointer.close()
        logging.warning("SIGTERM: saved a checkpoint at step %d; rerun the "
                        "same command to resume.", step)
        raise Preempted(f"Stopped by SIGTERM at step {step} (checkpointed).")

  checkpointer.close()

  # --- Evaluate -----------------------------------------------------------
  nnx.update(model, state.params)
  return _evaluate(model, dataset, config, workdir, step)


def restore_run(workdir: str):
  """(config, dataset, model with the latest checkpoint's params, step)."""
  config = load_run_config(workdir)
  dataset = setup.load_configured_dataset(config)
  model = setup.create_model(config, dataset.image_shape)
  graphdef, params = nnx.split(model)
  checkpointer = Checkpointer(workdir, keep=config.train.keep_checkpoints)
  steps_per_epoch = max(dataset.num_train // config.train.batch_size, 1)
  optimizer, _ = make_optimizer(config.train,
                                config.train.epochs * steps_per_epoch)
  restored = checkpointer.restore_latest(init_train_state(params, optimizer))
  checkpointer.close()
  if restored is None:
    raise FileNotFoundError(f"No checkpoint in {checkpointer.directory}: "
                            "train the run first.")
  state = restored[0]
  nnx.update(model, state.params)
  return config, dataset, model, int(state.step)


def evaluate_workdir(workdir: str, figures=None,
                     exploration=None) -> dict[str, float]:
  """Restores a run's latest checkpoint; writes eval.json and figures.

  `exploration`: an `evaluation.exploration.ExplorationOptions` (the points
  of the trajectory/traversal/view figures; default: chosen from the data).
  """
  config, dataset, model, step = restore_run(workdir)
  if figures is not None:
    figures = selected_figures(figures)
  return _evaluate(model, dataset, config, workdir, step, figures,
                   exploration)
