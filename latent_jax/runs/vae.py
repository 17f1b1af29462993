"""A VAE/AE run in a workdir: config -> data -> model -> engine -> evaluation.

    train_and_evaluate(config, workdir)   # trains or resumes, then evaluates
    restore_run(workdir, member=i)        # a trained model, for notebooks
    run_explorer(workdir)                 # its latent explorer (sliders)
    evaluate_workdir(workdir)             # eval.json and figures again

The same command on the same workdir resumes from the latest checkpoint; a
finished run only re-evaluates. Every run trains an ensemble of
(KL weight, seed) members in one program (train/ensemble.py); with one
member the workdir holds one model's files. With several, metrics.jsonl
records carry `member`, `kl_weight` and `seed`, each member is evaluated
into `<workdir>/members/<index>_<name>/` (its eval.json and figures/), and
`<workdir>/eval.json` is `{"step", "members": [...]}`.
"""

from __future__ import annotations

import os
import time
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from latent_jax import losses
from latent_jax.data import Dataset
from latent_jax.evaluation import explorer as explorer_lib
from latent_jax.evaluation.metrics import make_evaluator, summarize
from latent_jax.evaluation.registry import RUN_FIGURES, select_figures
from latent_jax.evaluation.report import evaluate_and_plot
from latent_jax.runs.member_models import MemberModels
from latent_jax.train import distributed, runner, setup, sharding
from latent_jax.train import workdir as workdir_lib
from latent_jax.train import workdir_lock
from latent_jax.train.checkpointing import Checkpointer, restore_from_run
from latent_jax.train.chunk import TrainState, make_chunk
from latent_jax.train.config_checks import validate_config
from latent_jax.train.ensemble import (Member, ensemble_members, host_members,
                                       member_keys, member_slice,
                                       resolve_conv_batching, stack_members)
from latent_jax.train.metrics_writer import (MetricsWriter, TensorBoardWriter,
                                             read_records)
from latent_jax.train.optimizers import make_optimizer
from latent_jax.train.step import (LOGGED, VAEInputs, init_ensemble_state,
                                   make_vae_update)

# Record fields naming the member of an ensemble run (absent with one member).
MEMBER_FIELDS = ("member", "kl_weight", "seed")
KINDS = ("vae", "ae")


class RestoredEnsemble(NamedTuple):
  """A trained run, every member; `nnx.update(model, params[i])` makes
  `model` member i (a one-program sweep's member: `MemberModels.model`)."""
  config: ml_collections.ConfigDict
  dataset: Dataset
  model: nnx.Module
  members: tuple[Member, ...]
  params: list[Any]   # one host (NumPy) nnx.State per member
  step: int


class RestoredRun(NamedTuple):
  """One trained model of a run."""
  config: ml_collections.ConfigDict
  dataset: Dataset
  model: nnx.Module   # holds the latest checkpoint's parameters
  step: int


def validate(config: ml_collections.ConfigDict) -> None:
  """Config checks of a VAE/AE run; raises ValueError naming the key."""
  validate_config(config)
  if config.model.kind not in KINDS:
    raise ValueError(f"Invalid config value model.kind="
                     f"{config.model.kind!r}: a VAE/AE run needs one of "
                     f"{list(KINDS)}.")
  select_figures(config.eval.figures, RUN_FIGURES)


def member_records(records: list[dict[str, Any]], members: tuple[Member, ...],
                   index: int) -> list[dict[str, Any]]:
  """The metrics.jsonl records of member `index`, without the member fields."""
  if len(members) == 1:
    return records
  return [{k: v for k, v in record.items() if k not in MEMBER_FIELDS}
          for record in records if record.get("member") == index]


def member_dir(workdir: str, member: Member) -> str:
  """Where an ensemble member's eval.json and figures/ go."""
  return workdir_lib.member_dir(workdir, member.index, member.name)


def _evaluate(model, dataset: Dataset, config, out_dir: str, step: int,
              figures, exploration, records) -> dict[str, float]:
  if not distributed.is_chief():
    figures = ()  # every process computes the metrics; one draws
  board = TensorBoardWriter(out_dir, config.log.tensorboard)  # images
  summary = evaluate_and_plot(
      model, test_images=dataset.test_images,
      test_labels=dataset.test_labels, label_names=dataset.label_names,
      categorical=dataset.categorical, train_images=dataset.train_images,
      train_labels=dataset.train_labels,
      likelihood=config.loss.likelihood,
      gaussian_scale=config.loss.gaussian_scale,
      batch_size=config.eval.batch_size,
      key=jax.random.key(config.seed + 1), out_dir=out_dir,
      figures=figures, records=records, num_images=config.eval.num_images,
      iwae_samples=config.eval.iwae_samples, exploration=exploration,
      on_figure=board.figure_logger(step))
  board.close()
  workdir_lib.write_eval(out_dir, step, summary)
  logging.info("Evaluation at step %d: %s", step,
               " ".join(f"{k}={v:.4g}" for k, v in summary.items()))
  return summary


def evaluate_members(run: RestoredEnsemble, workdir: str, figures=None,
                     exploration=None) -> dict[str, Any]:
  """Evaluates every member; one member keeps the single-run layout.

  Returns the metrics of a one-member run, else {"step", "members": [one
  dict per member: member, kl_weight, seed and its metrics]}, which is also
  what `<workdir>/eval.json` holds.
  """
  figures = select_figures(run.config.eval.figures if figures is None
                           else figures, RUN_FIGURES)
  records = read_records(workdir)
  sized = MemberModels(run.config, run.dataset.image_shape, run.model,
                       run.members)
  if len(run.members) == 1:
    return _evaluate(sized.model(run.members[0], run.params[0]), run.dataset,
                     run.config, workdir, run.step, figures, exploration,
                     records)
  entries = []
  for member in run.members:
    out_dir = member_dir(workdir, member)
    os.makedirs(out_dir, exist_ok=True)
    logging.info("Member %d (%s):", member.index, member.name)
    summary = _evaluate(sized.model(member, run.params[member.index]),
                        run.dataset, run.config, out_dir, run.step, figures,
                        exploration,
                        member_records(records, run.members, member.index))
    own_size = {} if member.latent_dim is None else {
        "latent_dim": member.latent_dim}
    entries.append({"member": member.index, "kl_weight": member.kl_weight,
                    "seed": member.seed, **own_size, **summary})
  workdir_lib.write_eval(workdir, run.step, {"members": entries})
  return {"step": int(run.step), "members": entries}


def _initial_state(config, image_shape, members, optimizer):
  """(graphdef, model, stacked TrainState) with each member's own init."""
  model = setup.create_model(config, image_shape, members[0].seed)
  graphdef, first = nnx.split(model)
  params = [first] + [
      nnx.split(setup.create_model(config, image_shape, member.seed))[1]
      for member in members[1:]]
  return graphdef, model, init_ensemble_state(stack_members(params),
                                              optimizer)


def _format_seconds(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  return f"{minutes}m{seconds:02d}s"


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       init_from: str | None = None) -> dict[str, Any]:
  """Trains (or resumes) the run in `workdir`, then evaluates it.

  `init_from`: the workdir of another run whose latest good checkpoint's
  parameters start this new run (a fresh optimiser state, step 0); its
  shapes must match this config's model and optimiser. Every check
  (config, same run, data, checkpoint) passes before `config.json` is
  written; the workdir is locked for the call (`train/workdir_lock.py`).

  Returns the final test-set metrics (also in `<workdir>/eval.json`); for
  several members {"step", "members": [...]} (see `evaluate_members`).
  """
  with workdir_lock.opening_run(config, workdir, init_from, validate):
    return _train_and_evaluate(config, workdir, init_from)


def _train_and_evaluate(config, workdir: str, init_from: str | None):
  record = workdir_lib.run_record(config, init_from)
  workdir_lib.check_same_run(record, workdir)
  members = ensemble_members(config)
  conv_batching = resolve_conv_batching(config.ensemble.conv_batching)
  dataset = setup.load_configured_dataset(config)
  setup.check_batch_size(config, dataset)

  mesh = sharding.make_mesh(config.train.batch_size, len(members),
                            config.ensemble.member_devices)
  everywhere = sharding.replicated(mesh)
  steps_per_epoch = dataset.num_train // config.train.batch_size
  total_steps = config.train.epochs * steps_per_epoch
  logging.info("%d member(s) on a %s mesh; data %s: %d train / %d test "
               "images of shape %s; %d steps (%d per epoch).", len(members),
               dict(mesh.shape), dataset.name, dataset.num_train,
               dataset.num_test, dataset.image_shape, total_steps,
               steps_per_epoch)

  optimizer, schedule = make_optimizer(config.train, total_steps)
  graphdef, model, state = _initial_state(config, dataset.image_shape,
                                          members, optimizer)
  sized = MemberModels(config, dataset.image_shape, model, members)
  state = sharding.shard_members(state, mesh)
  checkpointer = Checkpointer(workdir, keep=config.train.keep_checkpoints)
  try:
    restored = checkpointer.restore_latest(state)
    if restored is None and init_from is not None:
      params = restore_from_run(init_from, state).state.params
      state = sharding.shard_members(state._replace(params=params), mesh)
  except BaseException:
    checkpointer.close()
    raise
  if restored is not None:
    state = sharding.shard_members(restored[0], mesh)
    logging.info("Resumed from the checkpoint at step %d.", int(state.step))
  workdir_lib.write_config(record, workdir)  # every check has passed
  writer = MetricsWriter(workdir, tensorboard=config.log.tensorboard)
  writer.truncate_after(int(state.step))

  update = make_vae_update(
      graphdef, optimizer, likelihood=config.loss.likelihood,
      gaussian_scale=config.loss.gaussian_scale,
      kl_warmup_steps=config.loss.kl_warmup_steps,
      batch_size=config.train.batch_size, num_train=dataset.num_train,
      conv_batching=conv_batching,
      batch_sharding=sharding.batch_sharding(mesh),
      compute_dtype=config.train.compute_dtype)
  inputs = VAEInputs(sharding.put(dataset.train_images, everywhere),
                     *sharding.replicate(member_keys(config, members), mesh))
  test_images = sharding.put(dataset.test_images, everywhere)
  started = time.perf_counter()
  several = len(members) > 1
  mean_of = f" (mean of {len(members)})" if several else ""

  def write_members(step, split, metrics, shared=None):
    """One record per member ([M] values); one member: as a single run."""
    for member in members:
      record = {k: v[member.index] for k, v in metrics.items()}
      record.update(shared or {})
      if several:
        record.update(member=member.index, kl_weight=member.kl_weight,
                      seed=member.seed)
      writer.write(step, split, record)

  def log(step, phase, means, steps_per_sec):
    del phase
    write_members(step, "train", {k: means[k] for k in LOGGED}, dict(
        epoch=step / steps_per_epoch, learning_rate=float(schedule(step)),
        steps_per_sec=steps_per_sec,
        # per member: each of the M members sees every image
        images_per_sec=steps_per_sec * config.train.batch_size,
        elapsed_sec=time.perf_counter() - started))
    logging.info("step %d/%d | loss %.4g recon %.4g kl %.4g%s | %.1f "
                 "steps/s | ETA %s", step, total_steps,
                 np.mean(means["loss"]), np.mean(means["recon"]),
                 np.mean(means["kl"]), mean_of, steps_per_sec,
                 _format_seconds((total_steps - step)
                                 / max(steps_per_sec, 1e-9)))

  def evaluate(step, state: TrainState):
    # Member by member: the evaluator is the report's compiled program.
    per_member = [summarize(distributed.fetch(make_evaluator(
        sized.graphdef(member), config.loss.likelihood,
        config.loss.gaussian_scale, config.eval.batch_size)(
            sized.params(member, member_slice(state.params, member.index)),
            test_images, jax.random.key(config.seed + 1))),
        sized.latent_dim(member)) for member in members]
    metrics = {k: [m[k] for m in per_member] for k in per_member[0]}
    write_members(step, "test", metrics)
    logging.info("test at step %d | neg_elbo %.4g recon %.4g kl %.4g%s",
                 step, np.mean(metrics["neg_elbo"]),
                 np.mean(metrics["recon"]), np.mean(metrics["kl"]), mean_of)

  def describe_member(index):
    member = members[index]
    return (f" in member {index} (kl_weight={member.kl_weight:g}, "
            f"seed={member.seed})")

  hooks = runner.Hooks(
      log=log, evaluate=evaluate, describe_member=describe_member,
      checkpoint_meta=lambda step: {
          "epoch": step / steps_per_epoch,
          "members": [[m.kl_weight, m.seed] for m in members]})
  cadence = runner.Cadence(
      steps_per_call=config.train.steps_per_call,
      log_every=config.train.log_every_steps,
      eval_every=config.train.eval_every_steps or steps_per_epoch,
      checkpoint_every=config.train.checkpoint_every_steps)
  phases = [runner.Phase("train", total_steps,
                         make_chunk(update, config.train.chunk_mode), inputs)]
  try:
    state = runner.train(
        state, phases, cadence, hooks=hooks, checkpointer=checkpointer,
        advice="Lower train.learning_rate or set train.grad_clip_norm, "
        "then rerun to resume.")
  finally:
    checkpointer.close()
  run = RestoredEnsemble(config, dataset, model, members,
                         host_members(distributed.fetch(state.params)),
                         int(state.step))
  return distributed.chief_only(lambda: evaluate_members(run, workdir))


def restore_ensemble(workdir: str) -> RestoredEnsemble:
  """Every member of a trained run at its latest checkpoint (host arrays)."""
  config = workdir_lib.load_run_config(workdir)
  members = ensemble_members(config)
  dataset = setup.load_configured_dataset(config)
  steps_per_epoch = max(dataset.num_train // config.train.batch_size, 1)
  optimizer, _ = make_optimizer(config.train,
                                config.train.epochs * steps_per_epoch)
  _, model, state = _initial_state(config, dataset.image_shape, members,
                                   optimizer)
  checkpointer = Checkpointer(workdir, keep=config.train.keep_checkpoints)
  try:
    restored = checkpointer.restore_latest(state)
  finally:
    checkpointer.close()
  if restored is None:
    raise FileNotFoundError(f"No checkpoint in {checkpointer.directory}: "
                            "train the run first.")
  state = restored[0]
  return RestoredEnsemble(config, dataset, model, members,
                          host_members(distributed.fetch(state.params)),
                          int(state.step))


def restore_run(workdir: str, member: int | None = None) -> RestoredRun:
  """One model of a trained run; `member` is required for an ensemble."""
  run = restore_ensemble(workdir)
  if member is None and len(run.members) > 1:
    raise ValueError(
        f"{workdir} holds an ensemble of {len(run.members)} members; pass "
        f"member=<0..{len(run.members) - 1}> (see its eval.json for which "
        "is which).")
  member = 0 if member is None else member
  if not 0 <= member < len(run.members):
    raise ValueError(f"member={member} is out of range: {workdir} has "
                     f"{len(run.members)} member(s).")
  model = MemberModels(run.config, run.dataset.image_shape, run.model,
                       run.members).model(run.members[member],
                                          run.params[member])
  return RestoredRun(run.config, run.dataset, model, run.step)


def run_explorer(workdir: str, member: int | None = None,
                 spread: float = explorer_lib.SPREAD
                 ) -> explorer_lib.LatentExplorer:
  """The latent explorer of a trained run: one slider per latent dim over
  the test codes' mean +- `spread` std, the decoder's mean image beside.

  Raises ValueError naming `workdir` if it holds no trained run (no
  config.json or no checkpoint): there is no model to explore.
  """
  try:
    run = restore_run(workdir, member)
  except FileNotFoundError as error:
    raise ValueError(f"Cannot explore {workdir}: {error}") from error
  graphdef, params = nnx.split(run.model)
  likelihood = run.config.loss.likelihood
  embed = jax.jit(lambda p, x: nnx.merge(graphdef, p).embed(x))
  decode = jax.jit(lambda p, z: losses.decoder_mean(
      likelihood, nnx.merge(graphdef, p).decode(z)))
  images, batch = run.dataset.test_images, run.config.eval.batch_size
  codes = np.concatenate([np.asarray(embed(params, images[i:i + batch]))
                          for i in range(0, len(images), batch)])
  return explorer_lib.latent_explorer(
      lambda z: np.asarray(decode(params, z)), run.model.latent_dim,
      ranges=explorer_lib.code_ranges(codes, spread))


def evaluate_workdir(workdir: str, figures=None,
                     exploration=None) -> dict[str, Any]:
  """Restores a run's latest checkpoint; writes eval.json and figures.

  `figures`: a comma-separated subset (default: the config's).
  `exploration`: an `evaluation.exploration.ExplorationOptions` (the points
  of the trajectory/traversal/view figures; default: chosen from the data).
  """
  run = restore_ensemble(workdir)
  if figures is not None and not isinstance(figures, str):
    figures = ",".join(figures)
  return evaluate_members(run, workdir, figures, exploration)
