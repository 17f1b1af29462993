"""A parametric UMAP run in a workdir: the VAE runs' machinery, UMAP's model.

    config -> data -> graph + init targets (host, deterministic from seed)
      -> restore -> training chunks (metrics.jsonl, orbax checkpoints,
      SIGTERM) -> evaluate (eval.json, figures) -> <workdir>/reducer/

The same command on the same workdir resumes from the latest checkpoint (the
graph and layout are recomputed from the seed, identically); a finished run
only re-evaluates. `python -m experiments.evaluate --workdir=...` redraws the
figures from the saved reducer.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import jax
import ml_collections
import numpy as np
from absl import logging

from latent_jax.evaluation import embedding_metrics
from latent_jax.evaluation import umap_figures
from latent_jax.evaluation.figures import plot_loss_curves
from latent_jax.evaluation.report import write_eval_json
from latent_jax.train import setup
from latent_jax.train.checkpointing import Checkpointer
from latent_jax.train.config_checks import selected_figures, validate_config
from latent_jax.train.loop import (CONFIG_FILE, Preempted, _check_same_run,
                                   _sigterm_flag, load_run_config)
from latent_jax.train.metrics_writer import MetricsWriter, read_records
from latent_jax.umap.estimator import ParametricUMAP

FIGURES = ("umap_embedding", "loss_curves", "inverse_grid")
REDUCER_DIR = "reducer"


def reducer_from_config(config: ml_collections.ConfigDict) -> ParametricUMAP:
  """A ParametricUMAP with the run's settings (`umap` section + model)."""
  umap = config.umap
  return ParametricUMAP(
      n_components=config.model.latent_dim, n_neighbors=umap.n_neighbors,
      min_dist=umap.min_dist, spread=umap.spread, metric=umap.metric,
      n_epochs=umap.n_epochs or None, batch_size=umap.batch_size,
      negative_sample_rate=umap.negative_sample_rate,
      learning_rate=umap.learning_rate or None, encoder=config.model.arch,
      parametric_reconstruction=umap.parametric_reconstruction,
      reconstruction_weight=umap.reconstruction_weight,
      autoencoder_loss=umap.autoencoder_loss,
      reconstruction_loss=config.loss.likelihood,
      global_correlation_loss_weight=umap.global_correlation_loss_weight,
      spectral_init=umap.spectral_init, layout_init=umap.layout_init,
      layout_epochs=umap.layout_epochs, init_epochs=umap.init_epochs,
      grad_clip_norm=umap.grad_clip_norm, random_state=config.seed,
      chunk_mode=config.train.chunk_mode,
      steps_per_call=config.train.steps_per_call,
      full_batch_max_points=umap.full_batch_max_points,
      # Runs written before these options existed trained without them.
      neighbor_mixing=umap.get("neighbor_mixing", 0.0),
      input_noise=umap.get("input_noise", 0.0),
      init_batch_size=umap.get("init_batch_size", umap.batch_size),
      pca_components=umap.get("pca_components", 0))


def _validate(config) -> None:
  validate_config(config)  # the sections shared with the VAE runs
  if "umap" not in config:
    raise ValueError("model.kind='umap' needs the config's `umap` section: "
                     "build UMAP configs with experiments/configs/"
                     "common_umap.make_umap_config.")
  reducer_from_config(config)._check_hyperparameters()  # names the keyword
  for key in ("log_every_steps", "checkpoint_every_steps"):
    if config.train[key] < 1:
      raise ValueError(f"Invalid config value train.{key}="
                       f"{config.train[key]}: must be >= 1.")
  selected_figures(config.eval.figures, FIGURES)


def _class_label(dataset):
  """(labels [N], name, categorical) of the first label, or Nones."""
  if dataset.train_labels is None or not len(dataset.label_names):
    return None, None, "", True
  return (dataset.train_labels[:, 0], dataset.test_labels[:, 0],
          dataset.label_names[0], bool(dataset.categorical[0]))


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> dict[str, float]:
  """Trains (or resumes) the parametric UMAP of `workdir`, then evaluates."""
  # --- Config -------------------------------------------------------------
  _validate(config)
  os.makedirs(workdir, exist_ok=True)
  config_dict = config.to_dict()
  _check_same_run(config_dict, workdir)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, CONFIG_FILE), "w") as file:
      json.dump(config_dict, file, indent=2, default=list)

  # --- Data, graph and model ----------------------------------------------
  dataset = setup.load_configured_dataset(config)
  reducer = reducer_from_config(config)
  train_images = reducer._check_inputs(dataset.train_images)  # pylint: disable=protected-access
  started = time.perf_counter()
  reducer._setup(train_images)  # pylint: disable=protected-access
  trainer = reducer.make_trainer(train_images)
  plan = reducer.plan_
  logging.info("UMAP of %s: %d points, %d edges; %d init + %d UMAP steps. "
               "Setup: %s", dataset.name, len(train_images),
               len(reducer.edges_.weight), plan.init_steps, plan.umap_steps,
               {k: round(v, 2) for k, v in reducer.timings_.items()})

  # --- Restore ------------------------------------------------------------
  checkpointer = Checkpointer(workdir, keep=config.train.keep_checkpoints)
  writer = MetricsWriter(workdir)
  state = trainer.init_state()
  restored = checkpointer.restore_latest(state)
  if restored is not None:
    state = restored[0]
    logging.info("Resumed from the checkpoint at step %d.", int(state.step))
  writer.truncate_after(int(state.step))

  # --- Loop ---------------------------------------------------------------
  cadences = (config.train.log_every_steps,
              config.train.checkpoint_every_steps)

  def boundary(step):
    return min((step // c + 1) * c for c in cadences)

  def save(step, state):
    checkpointer.save(step, state, {"step": step})

  def on_chunk(step, phase, metrics, state):
    at_end = step == plan.total_steps
    if step % config.train.log_every_steps == 0 or at_end:
      record = {k: float(v) for k, v in metrics.items()
                if k not in ("num_steps", "first_nonfinite_step")}
      record.update(phase=phase, elapsed_sec=time.perf_counter() - started)
      writer.write(step, "train", record)
      logging.info("step %d/%d | %s loss %.4f", step, plan.total_steps,
                   phase, record["loss"])
    if step % config.train.checkpoint_every_steps == 0 or at_end:
      save(step, state)

  with _sigterm_flag() as sigterm:
    try:
      state = trainer.run(state, on_chunk, sigterm.is_set, boundary)
    except FloatingPointError as error:
      checkpointer.close()
      raise FloatingPointError(
          f"{error} The last good checkpoint (step "
          f"{checkpointer.latest_step()}) is kept; rerun to resume.") from None
    if sigterm.is_set():
      save(int(state.step), state)
      checkpointer.close()
      raise Preempted(f"Stopped by SIGTERM at step {int(state.step)} "
                      "(checkpointed).")
  checkpointer.close()

  # --- Evaluate -----------------------------------------------------------
  trainer.finalize(state)
  if jax.process_index() == 0:
    reducer.save(os.path.join(workdir, REDUCER_DIR))
  return _evaluate(reducer, dataset, config, workdir, int(state.step))


def _evaluate(reducer: ParametricUMAP, dataset, config, workdir: str,
              step: int, figures=None) -> dict[str, float]:
  """eval.json numbers (held-out test set) and the figures."""
  figures = figures or selected_figures(config.eval.figures, FIGURES)
  train_labels, test_labels, label_name, categorical = _class_label(dataset)
  test_images = reducer._check_inputs(dataset.test_images)  # pylint: disable=protected-access
  started = time.perf_counter()
  test_embedding = reducer.transform(test_images)
  summary = {"transform_sec": time.perf_counter() - started}
  quality = embedding_metrics.embedding_quality(
      test_images, test_embedding,
      test_labels if categorical else None)
  summary.update(quality)
  summary["train_trustworthiness"] = embedding_metrics.trustworthiness(
      reducer.training_data_, reducer.embedding_)
  # The same scores for umap-learn's kind of transform (the encoder's
  # output refined against the training embedding), where the training
  # data was kept: how much the encoder's generalisation costs.
  if reducer.training_data_ is not None:
    started = time.perf_counter()
    refined = reducer.transform(test_images, method="refine")
    summary["refine_sec"] = time.perf_counter() - started
    summary.update({f"refined_{name}": value for name, value in
                    embedding_metrics.embedding_quality(
                        test_images, refined,
                        test_labels if categorical else None).items()})
  if reducer.has_decoder:
    with warnings.catch_warnings():  # test points outside the hull: expected
      warnings.simplefilter("ignore")
      decoded = reducer.inverse_transform(test_embedding, method="decoder")
    summary["inverse_mse"] = float(np.mean((decoded - test_images) ** 2))
  summary["mean_image_mse"] = float(np.mean(
      (test_images - reducer.training_data_.mean(axis=0)) ** 2))

  if jax.process_index() == 0:
    cmap = "viridis" if test_images.shape[1] >= 32 else "gray"
    if "umap_embedding" in figures:
      umap_figures.plot_embedding(
          test_embedding, os.path.join(workdir, "umap_embedding.png"),
          labels=test_labels, label_name=label_name, categorical=categorical,
          title=f"{dataset.name}: test embedding ({len(test_embedding)})")
    if "loss_curves" in figures:
      records = [r for r in read_records(workdir) if "loss" in r]
      if records:
        plot_loss_curves(records, os.path.join(workdir, "loss_curves.png"),
                         keys=["loss"])
    if "inverse_grid" in figures and reducer.n_components == 2:
      with warnings.catch_warnings():  # default corners lie inside the hull
        warnings.simplefilter("ignore")
        umap_figures.plot_inverse_grid(
            test_embedding, reducer.inverse_transform,
            os.path.join(workdir, "inverse_grid.png"), labels=test_labels,
            label_name=label_name, categorical=categorical, cmap=cmap)
    write_eval_json(workdir, step, summary)
  logging.info("Evaluation at step %d: %s", step,
               " ".join(f"{k}={v:.4g}" for k, v in summary.items()))
  return summary


def evaluate_workdir(workdir: str, figures=None) -> dict[str, float]:
  """Re-evaluates a finished UMAP run from its saved reducer."""
  config = load_run_config(workdir)
  path = os.path.join(workdir, REDUCER_DIR)
  if not os.path.exists(path):
    raise FileNotFoundError(f"No {REDUCER_DIR}/ in {workdir}: the run has "
                            "not finished; rerun experiments.train to resume.")
  reducer = ParametricUMAP.load(path)
  dataset = setup.load_configured_dataset(config)
  checkpointer = Checkpointer(workdir, keep=config.train.keep_checkpoints)
  step = checkpointer.latest_step() or 0
  checkpointer.close()
  if figures is not None:
    figures = selected_figures(figures if isinstance(figures, str)
                               else ",".join(figures), FIGURES)
  return _evaluate(reducer, dataset, config, workdir, step, figures)
