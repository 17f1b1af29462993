"""`train_and_evaluate(config, workdir)`: the training loop, top to bottom.

Phases: config -> mesh -> data -> model -> restore -> step -> loop ->
evaluate. Running the same command on the same workdir resumes from the latest
checkpoint; a finished run only re-evaluates. SIGTERM saves a checkpoint and
stops; a NaN/Inf loss stops with the step and the term that went bad, keeping
the last good checkpoint.

Every run trains an ensemble (latent_jax/train/ensemble.py); with one member
the workdir looks exactly as it always has. With several, metrics.jsonl
records carry `member`, `kl_weight` and `seed`; each member is evaluated into
`<workdir>/members/<name>/` (its eval.json and figures/), and
`<workdir>/eval.json` lists every member under "members".
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
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from latent_jax.evaluation.metrics import make_evaluator, summarize
from latent_jax.evaluation.report import evaluate_and_plot, write_eval_json
from latent_jax.train import distributed, setup, sharding
from latent_jax.train.checkpointing import Checkpointer
from latent_jax.train.config_checks import selected_figures, validate_config
from latent_jax.train.ensemble import (Member, ensemble_members, host_members,
                                       member_keys, member_slice,
                                       resolve_conv_batching, stack_members)
from latent_jax.train.metrics_writer import MetricsWriter, read_records
from latent_jax.train.optimizers import make_optimizer
from latent_jax.train.step import (TrainState, init_ensemble_state,
                                   make_train_chunk, nonfinite_terms)

CONFIG_FILE = "config.json"
MEMBERS_DIR = "members"
# Changing these on an existing workdir would mix two different runs.
RUN_DEFINING_KEYS = ("seed", "data", "model", "loss", "train.batch_size",
                     "ensemble.kl_weights", "ensemble.seeds")
# Record fields naming the member of an ensemble run (absent with one member).
MEMBER_FIELDS = ("member", "kl_weight", "seed")


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
  # Runs from before ensembles existed have no ensemble keys: the same as
  # empty lists (one member).
  for flat in (previous, current):
    for key in ("ensemble.kl_weights", "ensemble.seeds"):
      flat[key] = flat.get(key) or []
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


def member_records(records: list[dict[str, Any]], members: tuple[Member, ...],
                   index: int) -> list[dict[str, Any]]:
  """The metrics.jsonl records of member `index`, without the member fields."""
  if len(members) == 1:
    return records
  return [{k: v for k, v in record.items() if k not in MEMBER_FIELDS}
          for record in records if record.get("member") == index]


def member_dir(workdir: str, member: Member) -> str:
  """Where an ensemble member's eval.json and figures/ go."""
  return os.path.join(workdir, MEMBERS_DIR, f"{member.index:02d}_"
                      f"{member.name}")


def _evaluate(model, dataset, config, workdir: str, step: int,
              figures=None, exploration=None, records=None
              ) -> dict[str, float]:
  if figures is None:
    figures = selected_figures(config.eval.figures)
  if not distributed.is_chief():
    figures = ()  # every process computes the metrics; one draws
  summary = evaluate_and_plot(
      model, test_images=dataset.test_images,
      test_labels=dataset.test_labels, label_names=dataset.label_names,
      categorical=dataset.categorical, train_images=dataset.train_images,
      train_labels=dataset.train_labels,
      likelihood=config.loss.likelihood,
      gaussian_scale=config.loss.gaussian_scale,
      batch_size=config.eval.batch_size,
      key=jax.random.key(config.seed + 1), out_dir=workdir,
      figures=figures,
      records=read_records(workdir) if records is None else records,
      num_images=config.eval.num_images,
      # .get: runs written before this setting existed evaluate without it.
      iwae_samples=config.eval.get("iwae_samples", 0),
      exploration=exploration)
  if distributed.is_chief():
    write_eval_json(workdir, step, summary)
  logging.info("Evaluation at step %d: %s", step,
               " ".join(f"{k}={v:.4g}" for k, v in summary.items()))
  return summary


def _evaluate_members(model, member_params: list[Any],
                      members: tuple[Member, ...], dataset, config,
                      workdir: str, step: int, figures=None,
                      exploration=None) -> dict[str, Any]:
  """Evaluates every member; one member keeps the single-run layout.

  Returns the metrics of a one-member run, else {"step", "members": [one
  dict per member: member, kl_weight, seed and its metrics]}, which is also
  what `<workdir>/eval.json` holds.
  """
  if len(members) == 1:
    nnx.update(model, member_params[0])
    return _evaluate(model, dataset, config, workdir, step, figures,
                     exploration)
  records = read_records(workdir)
  entries = []
  for member in members:
    out_dir = member_dir(workdir, member)
    os.makedirs(out_dir, exist_ok=True)
    nnx.update(model, member_params[member.index])
    logging.info("Member %d (kl_weight=%g, seed=%d):", member.index,
                 member.kl_weight, member.seed)
    summary = _evaluate(model, dataset, config, out_dir, step, figures,
                        exploration,
                        member_records(records, members, member.index))
    entries.append({"member": member.index, "kl_weight": member.kl_weight,
                    "seed": member.seed, **summary})
  if distributed.is_chief():
    path = os.path.join(workdir, "eval.json")
    with open(path + ".tmp", "w") as file:
      json.dump({"step": int(step), "members": entries}, file, indent=2)
    os.replace(path + ".tmp", path)
  return {"step": int(step), "members": entries}


def _initial_state(config, image_shape, members, optimizer):
  """(graphdef, model, stacked TrainState) with each member's own init."""
  model = setup.create_model(config, image_shape, members[0].seed)
  graphdef, first = nnx.split(model)
  params = [first] + [
      nnx.split(setup.create_model(config, image_shape, member.seed))[1]
      for member in members[1:]]
  return graphdef, model, init_ensemble_state(stack_members(params),
                                              optimizer)


def _restore(checkpointer: Checkpointer, state: TrainState):
  """(state, meta) of the latest checkpoint, or None.

  Runs written before ensembles existed saved one model without a member
  axis; a one-member run restores those and adds the axis.
  """
  try:
    return checkpointer.restore_latest(state)
  except ValueError:
    if jax.tree.leaves(state.params)[0].shape[0] != 1:
      raise
    single = TrainState(member_slice(state.params, 0),
                        member_slice(state.opt_state, 0), state.step)
    try:
      restored, meta = checkpointer.restore_latest(single)
    except ValueError:
      pass
    else:
      add_axis = lambda tree: jax.tree.map(lambda x: x[None], tree)
      return TrainState(add_axis(restored.params),
                        add_axis(restored.opt_state), restored.step), meta
    raise


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> dict[str, float]:
  """Trains (or resumes) the run in `workdir`, then evaluates it.

  Returns the final test-set metrics (also written to `<workdir>/eval.json`);
  for an ensemble of several members {"step", "members": [...]} (see
  `_evaluate_members`).
  """
  distributed.initialize()  # a no-op unless launched as several processes
  # --- Config -------------------------------------------------------------
  validate_config(config)
  members = ensemble_members(config)
  conv_batching = resolve_conv_batching(config.ensemble.conv_batching)
  os.makedirs(workdir, exist_ok=True)
  config_dict = config.to_dict()
  _check_same_run(config_dict, workdir)
  if distributed.is_chief():
    with open(os.path.join(workdir, CONFIG_FILE), "w") as file:
      json.dump(config_dict, file, indent=2, default=list)

  # --- Mesh ---------------------------------------------------------------
  mesh = sharding.make_mesh(config.train.batch_size, len(members),
                            config.ensemble.member_devices)
  logging.info("%d member(s) on a %s mesh of %d device(s).", len(members),
               dict(mesh.shape), mesh.size)

  # --- Data ---------------------------------------------------------------
  dataset = setup.load_configured_dataset(config)
  setup.check_batch_size(config, dataset)
  everywhere = sharding.replicated(mesh)
  train_images = sharding.put(dataset.train_images, everywhere)  # once
  test_images = sharding.put(dataset.test_images, everywhere)
  steps_per_epoch = dataset.num_train // config.train.batch_size
  total_steps = config.train.epochs * steps_per_epoch
  eval_every = config.train.eval_every_steps or steps_per_epoch
  logging.info("Data %s: %d train / %d test images of shape %s; %d steps "
               "(%d per epoch).", dataset.name, dataset.num_train,
               dataset.num_test, dataset.image_shape, total_steps,
               steps_per_epoch)

  # --- Model and optimiser -------------------------------------------------
  optimizer, schedule = make_optimizer(config.train, total_steps)
  graphdef, model, state = _initial_state(config, dataset.image_shape,
                                          members, optimizer)
  state = sharding.shard_members(state, mesh)

  # --- Restore ------------------------------------------------------------
  checkpointer = Checkpointer(workdir, keep=config.train.keep_checkpoints)
  writer = MetricsWriter(workdir)
  restored = _restore(checkpointer, state)
  if restored is not None:
    state = sharding.shard_members(restored[0], mesh)
    logging.info("Resumed from the checkpoint at step %d.", int(state.step))
  writer.truncate_after(int(state.step))

  # --- Step ---------------------------------------------------------------
  train_chunk = make_train_chunk(
      graphdef, optimizer, likelihood=config.loss.likelihood,
      gaussian_scale=config.loss.gaussian_scale,
      kl_warmup_steps=config.loss.kl_warmup_steps,
      batch_size=config.train.batch_size, num_train=dataset.num_train,
      chunk_mode=config.train.chunk_mode, conv_batching=conv_batching,
      batch_sharding=sharding.batch_sharding(mesh))
  data_key, model_keys, kl_weights = jax.device_put(
      member_keys(config, members), everywhere)
  test_evaluator = make_evaluator(graphdef, config.loss.likelihood,
                                  config.loss.gaussian_scale,
                                  config.eval.batch_size)

  # --- Loop ---------------------------------------------------------------
  step = int(state.step)
  cadences = (config.train.log_every_steps, eval_every,
              config.train.checkpoint_every_steps)
  # Host-side [M] sums of chunk metrics (weighted by steps) since the last log.
  logged_terms = ("loss", "recon", "kl", "neg_elbo", "grad_norm")
  pending_sums, pending_steps = dict.fromkeys(logged_terms, 0.0), 0

  def write_members(step, split, metrics, shared=None):
    """One record per member ([M] values); one member: as a single run."""
    for member in members:
      record = {k: v[member.index] for k, v in metrics.items()}
      record.update(shared or {})
      if len(members) > 1:
        record.update(member=member.index, kl_weight=member.kl_weight,
                      seed=member.seed)
      writer.write(step, split, record)
  train_seconds = 0.0
  loop_started = time.perf_counter()

  def save(at_step, state):
    checkpointer.save(at_step, state, {
        "step": at_step, "epoch": at_step / steps_per_epoch,
        "members": [[m.kl_weight, m.seed] for m in members]})

  with _sigterm_flag() as sigterm:
    while step < total_steps:
      # Run up to the next log/eval/checkpoint boundary, in one device call.
      boundary = min([total_steps] + [(step // c + 1) * c for c in cadences])
      num_steps = min(boundary - step, config.train.steps_per_call)
      started = time.perf_counter()
      state, metrics = train_chunk(state, train_images, data_key,
                                   model_keys, kl_weights, num_steps,
                                   sigterm.is_set)
      metrics = distributed.fetch(metrics)
      num_steps = int(metrics["num_steps"])  # fewer if SIGTERM cut it short
      train_seconds += time.perf_counter() - started
      bad = [m for m in members if metrics["first_nonfinite_step"][m.index]
             >= 0]
      if bad:
        member = min(bad, key=lambda m: metrics["first_nonfinite_step"][
            m.index])
        bad_step = int(metrics["first_nonfinite_step"][member.index])
        terms = ", ".join(nonfinite_terms(int(
            metrics["nonfinite_bits"][member.index])))
        where = "" if len(members) == 1 else (
            f" in member {member.index} (kl_weight={member.kl_weight:g}, "
            f"seed={member.seed})")
        last = checkpointer.latest_step()
        checkpointer.close()
        raise NonFiniteLossError(
            f"Non-finite {terms}{where} at step {bad_step}; training stopped. "
            f"The last good checkpoint (step {last}) is kept in "
            f"{checkpointer.directory}. Lower train.learning_rate or set "
            "train.grad_clip_norm, then rerun to resume.")
      step += num_steps
      for name in logged_terms:
        pending_sums[name] = pending_sums[name] + (
            np.asarray(metrics[name], np.float64) * num_steps)
      pending_steps += num_steps

      # (A chunk cut short by SIGTERM before its first step changes nothing.)
      at_end = step == total_steps
      if pending_steps and (step % config.train.log_every_steps == 0
                            or at_end):
        averages = {k: v / pending_steps for k, v in pending_sums.items()}
        steps_per_sec = pending_steps / max(train_seconds, 1e-9)
        write_members(step, "train", averages, dict(
            epoch=step / steps_per_epoch,
            learning_rate=float(schedule(step)),
            steps_per_sec=steps_per_sec,
            # per member: each of the M members sees every image
            images_per_sec=steps_per_sec * config.train.batch_size,
            elapsed_sec=time.perf_counter() - loop_started))
        logging.info(
            "step %d/%d | loss %.4g recon %.4g kl %.4g%s | %.1f steps/s | "
            "ETA %s", step, total_steps, np.mean(averages["loss"]),
            np.mean(averages["recon"]), np.mean(averages["kl"]),
            f" (mean of {len(members)})" if len(members) > 1 else "",
            steps_per_sec,
            _format_seconds((total_steps - step) / max(steps_per_sec, 1e-9)))
        pending_sums = dict.fromkeys(logged_terms, 0.0)
        pending_steps, train_seconds = 0, 0.0

      if num_steps and (step % eval_every == 0 or at_end):
        # Member by member: the evaluator is the report's compiled program.
        per_member = [summarize(distributed.fetch(test_evaluator(
            member_slice(state.params, member.index), test_images,
            jax.random.key(config.seed + 1))), config.model.latent_dim)
                      for member in members]
        test_metrics = {k: [m[k] for m in per_member] for k in per_member[0]}
        write_members(step, "test", test_metrics)
        logging.info("test at step %d | neg_elbo %.4g recon %.4g kl %.4g%s",
                     step, np.mean(test_metrics["neg_elbo"]),
                     np.mean(test_metrics["recon"]),
                     np.mean(test_metrics["kl"]),
                     f" (mean of {len(members)})" if len(members) > 1 else "")

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
  return _evaluate_members(model, host_members(distributed.fetch(
      state.params)), members, dataset, config, workdir, step)


def restore_ensemble(workdir: str):
  """(config, dataset, model, members, [params per member], step).

  `model` is built for the run's config; `nnx.update(model, params[i])` makes
  it member i. Params are host (NumPy) trees.
  """
  config = load_run_config(workdir)
  members = ensemble_members(config)
  dataset = setup.load_configured_dataset(config)
  checkpointer = Checkpointer(workdir, keep=config.train.keep_checkpoints)
  steps_per_epoch = max(dataset.num_train // config.train.batch_size, 1)
  optimizer, _ = make_optimizer(config.train,
                                config.train.epochs * steps_per_epoch)
  _, model, state = _initial_state(config, dataset.image_shape, members,
                                   optimizer)
  restored = _restore(checkpointer, state)
  checkpointer.close()
  if restored is None:
    raise FileNotFoundError(f"No checkpoint in {checkpointer.directory}: "
                            "train the run first.")
  state = restored[0]
  return (config, dataset, model, members,
          host_members(distributed.fetch(state.params)), int(state.step))


def restore_run(workdir: str, member: int | None = None):
  """(config, dataset, model with the latest checkpoint's params, step).

  `member`: which member of an ensemble run (required when it has several).
  """
  config, dataset, model, members, params, step = restore_ensemble(workdir)
  if member is None and len(members) > 1:
    raise ValueError(
        f"{workdir} holds an ensemble of {len(members)} members; pass "
        f"member=<0..{len(members) - 1}> (see its eval.json for which is "
        "which).")
  member = 0 if member is None else member
  if not 0 <= member < len(members):
    raise ValueError(f"member={member} is out of range: {workdir} has "
                     f"{len(members)} member(s).")
  nnx.update(model, params[member])
  return config, dataset, model, step


def evaluate_workdir(workdir: str, figures=None,
                     exploration=None) -> dict[str, float]:
  """Restores a run's latest checkpoint; writes eval.json and figures.

  `exploration`: an `evaluation.exploration.ExplorationOptions` (the points
  of the trajectory/traversal/view figures; default: chosen from the data).
  """
  config, dataset, model, members, params, step = restore_ensemble(workdir)
  if figures is not None:
    figures = selected_figures(figures)
  return _evaluate_members(model, params, members, dataset, config, workdir,
                           step, figures, exploration)
