"""A Parametric UMAP run in a workdir: the VAE runs' guarantees, UMAP's model.

    config -> data -> ParametricUMAP(**config.umap, ...).prepare_fit
      (graph + layout, host, deterministic from the seed) -> restore ->
      the engine (metrics.jsonl, orbax checkpoints, NaN stop, SIGTERM)
      -> evaluation (eval.json, figures) -> <workdir>/reducer/

The same command on the same workdir resumes from the latest checkpoint (the
graph and layout are recomputed from the seed, identically); a finished run
only re-evaluates. `python -m experiments.evaluate --workdir=...` redraws the
figures from the saved reducer. A UMAP run is one process (its graph and
edge batches are host-local): a multi-process job is refused with one line.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import ml_collections
from absl import logging

from latent_jax.data import Dataset
from latent_jax.evaluation.registry import UMAP_FIGURES, select_figures
from latent_jax.evaluation.umap_report import evaluate_reducer
from latent_jax.train import distributed, runner, setup
from latent_jax.train import workdir as workdir_lib
from latent_jax.train import workdir_lock
from latent_jax.train.checkpointing import Checkpointer, restore_from_run
from latent_jax.train.config_checks import validate_config
from latent_jax.train.metrics_writer import MetricsWriter, read_records
from latent_jax.umap import validation
from latent_jax.umap.estimator import ParametricUMAP

REDUCER_DIR = "reducer"
# Estimator keywords that other config sections own.
OWNED_ELSEWHERE = ("n_components", "encoder", "reconstruction_loss",
                   "random_state", "chunk_mode", "steps_per_call", "verbose")


def reducer_from_config(config: ml_collections.ConfigDict) -> ParametricUMAP:
  """`ParametricUMAP(**config.umap)` with the keywords other sections own."""
  return ParametricUMAP(
      **config.umap.to_dict(), n_components=config.model.latent_dim,
      encoder=config.model.arch, reconstruction_loss=config.loss.likelihood,
      random_state=config.seed, chunk_mode=config.train.chunk_mode,
      steps_per_call=config.train.steps_per_call)


def validate(config: ml_collections.ConfigDict) -> None:
  """Config checks of a UMAP run; raises ValueError naming the key."""
  validate_config(config)  # the sections shared with the VAE runs
  if "umap" not in config:
    raise ValueError("model.kind='umap' needs the config's `umap` section: "
                     "build UMAP configs with experiments/configs/"
                     "common_umap.make_umap_config.")
  try:
    validation.check_hyperparameters(reducer_from_config(config).get_params())
  except TypeError as error:  # a key ParametricUMAP does not take
    raise ValueError(f"Invalid config section umap: {error}.") from None
  select_figures(config.eval.figures, UMAP_FIGURES)


def check_single_process() -> None:
  """A UMAP run is one process; ValueError on every process of a job of
  several (the kNN graph, layout and edge batches are host-local, so the
  processes would train unsynchronised copies and race on the files)."""
  if jax.process_count() > 1:
    raise ValueError(
        f"UMAP runs are single-process, but this job has "
        f"{jax.process_count()} processes (JAX_NUM_PROCESSES, srun or a TPU "
        "pod slice): run it as one process, e.g. without NUM_PROCESSES in "
        "launch/local.sh or with --nodes=1 under SLURM.")


def _validate_run(config: ml_collections.ConfigDict) -> None:
  validate(config)
  check_single_process()


def _evaluate(reducer: ParametricUMAP, dataset: Dataset, config, workdir: str,
              step: int, figures=None) -> dict[str, float]:
  """eval.json numbers (held-out test set) and the figures."""
  figures = select_figures(config.eval.figures if figures is None
                           else figures, UMAP_FIGURES)
  summary = evaluate_reducer(
      reducer, dataset.test_images, test_labels=dataset.test_labels,
      label_names=dataset.label_names, categorical=dataset.categorical,
      dataset_name=dataset.name, out_dir=workdir,
      figures=figures if distributed.is_chief() else (),
      records=read_records(workdir))
  workdir_lib.write_eval(workdir, step, summary)
  logging.info("Evaluation at step %d: %s", step,
               " ".join(f"{k}={v:.4g}" for k, v in summary.items()))
  return summary


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       init_from: str | None = None) -> dict[str, Any]:
  """Trains (or resumes) the parametric UMAP of `workdir`, then evaluates.

  `init_from`, the lock and when `config.json` is written: as for VAE runs
  (`runs/vae.py`); the graph and layout are this config's own. A job of
  several processes is refused on every process before the workdir is
  touched (`check_single_process`).
  """
  with workdir_lock.opening_run(config, workdir, init_from, _validate_run):
    return _train_and_evaluate(config, workdir, init_from)


def _train_and_evaluate(config, workdir: str, init_from: str | None):
  record = workdir_lib.run_record(config, init_from)
  workdir_lib.check_same_run(record, workdir)
  dataset = setup.load_configured_dataset(config)
  reducer = reducer_from_config(config)
  started = time.perf_counter()
  fit = reducer.prepare_fit(dataset.train_images)
  logging.info("UMAP of %s: %d points, %d edges; %d init + %d UMAP steps. "
               "Setup: %s", dataset.name, len(fit.array),
               len(fit.edges.weight), fit.plan.init_steps,
               fit.plan.umap_steps,
               {k: round(v, 2) for k, v in fit.timings.items()})

  checkpointer = Checkpointer(workdir, keep=config.train.keep_checkpoints)
  state = fit.init_state()
  try:
    restored = checkpointer.restore_latest(state)
    if restored is None and init_from is not None:
      state = state._replace(
          params=restore_from_run(init_from, state).state.params)
  except BaseException:
    checkpointer.close()
    raise
  if restored is not None:
    state = restored[0]
    logging.info("Resumed from the checkpoint at step %d.", int(state.step))
  workdir_lib.write_config(record, workdir)  # every check has passed
  writer = MetricsWriter(workdir, tensorboard=config.log.tensorboard)
  writer.truncate_after(int(state.step))

  def log(step, phase, means, steps_per_sec):
    record = {k: float(v) for k, v in means.items()}
    record.update(phase=phase, steps_per_sec=steps_per_sec,
                  elapsed_sec=time.perf_counter() - started)
    writer.write(step, "train", record)
    logging.info("step %d/%d | %s loss %.4f", step, fit.plan.total_steps,
                 phase, record["loss"])

  cadence = runner.Cadence(
      steps_per_call=config.train.steps_per_call,
      log_every=config.train.log_every_steps,
      checkpoint_every=config.train.checkpoint_every_steps)
  try:
    state = runner.train(
        state, fit.phases(), cadence,
        hooks=runner.Hooks(log=log, after_chunk=fit.record_chunk),
        checkpointer=checkpointer,
        advice="Lower umap.learning_rate or umap.grad_clip_norm, then rerun "
        "to resume.")
  finally:
    checkpointer.close()
  reducer.finish_fit(fit.finish(state))
  if distributed.is_chief():
    reducer.save(os.path.join(workdir, REDUCER_DIR))
  return _evaluate(reducer, dataset, config, workdir, int(state.step))


def evaluate_workdir(workdir: str, figures=None,
                     exploration=None) -> dict[str, float]:
  """Re-evaluates a finished UMAP run from its saved reducer.

  `exploration` is accepted for a uniform signature across run kinds: a
  UMAP run has no latent-exploration figures.
  """
  del exploration
  config = workdir_lib.load_run_config(workdir)
  path = os.path.join(workdir, REDUCER_DIR)
  if not os.path.exists(path):
    raise FileNotFoundError(f"No {REDUCER_DIR}/ in {workdir}: the run has "
                            "not finished; rerun experiments.train to resume.")
  reducer = ParametricUMAP.load(path)
  dataset = setup.load_configured_dataset(config)
  checkpointer = Checkpointer(workdir, keep=config.train.keep_checkpoints)
  step = checkpointer.latest_step() or 0
  checkpointer.close()
  return _evaluate(reducer, dataset, config, workdir, step, figures)
