"""The VAE/AE training run end to end: the loss goes down, resume is exact
(after a crash, SIGTERM or SIGKILL), failures are clean, ensembles write and
restore every member, and a finished run re-evaluates."""

import copy
import json
import logging
import os
import shutil
import signal
import time

import jax
import matplotlib.image as mpimg
import numpy as np
import pytest

from experiments.configs import vae_digits, vae_heatmaps
from latent_jax.evaluation.exploration import ExplorationOptions
from latent_jax.runs import run_module
from latent_jax.runs import vae as vae_run
from latent_jax.train import distributed, runner
from latent_jax.train import workdir as workdir_lib
from latent_jax.train.checkpointing import Checkpointer
from latent_jax.evaluation.registry import RUN_FIGURES, select_figures
from latent_jax.train.ensemble import ensemble_members
from latent_jax.train.metrics_writer import MetricsWriter, read_records
from latent_jax.train.workdir_lock import WorkdirBusyError, WorkdirLock


def _latest_checkpoint(workdir):
  """(state, meta) of the workdir's last checkpoint."""
  checkpointer = Checkpointer(workdir)
  state, meta = checkpointer.restore_latest()
  checkpointer.close()
  return state, meta


# --- One model ----------------------------------------------------------------


def test_smoke_training_lowers_the_loss_and_writes_everything(
    vae_heatmaps_run):
  config, workdir, summary = vae_heatmaps_run
  records = read_records(workdir)
  train = [r for r in records if r["split"] == "train"]
  test = [r for r in records if r["split"] == "test"]
  assert train[-1]["loss"] < 0.8 * train[0]["loss"]
  assert test[-1]["neg_elbo"] < test[0]["neg_elbo"]
  assert [r["step"] for r in train] == sorted({r["step"] for r in train})
  for key in ("steps_per_sec", "learning_rate", "kl", "recon"):
    assert key in train[0]
  with open(os.path.join(workdir, "eval.json")) as file:
    written = json.load(file)
  for key in ("recon", "kl", "neg_elbo", "mse", "frobenius"):
    assert written[key] == pytest.approx(summary[key])
  assert summary["neg_elbo"] == pytest.approx(summary["recon"] + summary["kl"])
  assert 0 < summary["recon_floor"] < summary["recon"]
  # K=4 importance samples bound log p(x) more tightly than the ELBO.
  assert summary["recon_floor"] < summary["iwae_nll"] < summary["neg_elbo"]
  assert 0 <= summary["active_units"] <= config.model.latent_dim
  assert summary["frobenius_median"] <= summary["frobenius_p95"]
  # Frobenius^2 / pixels is the per-image MSE; Jensen: mean(F)^2 <= mean(F^2).
  assert summary["frobenius"] ** 2 / 1296 <= summary["mse"] * (1 + 1e-5)
  with open(os.path.join(workdir, "config.json")) as file:
    assert json.load(file)["model"]["latent_dim"] == config.model.latent_dim
  # Smoke configs draw every figure but the UMAP view (its fit is slow).
  assert select_figures(config.eval.figures, RUN_FIGURES) == tuple(
      name for name in RUN_FIGURES if name != "latent_umap")
  for name in select_figures(config.eval.figures, RUN_FIGURES):
    path = os.path.join(workdir, "figures", f"{name}.png")
    assert os.path.getsize(path) > 5000, name


def _cheapest_evaluation(config):
  """`config` with loss curves only and no IWAE bound: evaluation settings
  do not define the run, so it resumes the same run, evaluated faster."""
  cheaper = copy.deepcopy(config)
  cheaper.eval.figures = "loss_curves"
  cheaper.eval.iwae_samples = 0
  return cheaper


def test_rerunning_a_finished_run_only_reevaluates(vae_heatmaps_run,
                                                   copy_run):
  config, finished, summary = vae_heatmaps_run
  workdir = copy_run(finished)
  before = read_records(workdir)
  again = vae_run.train_and_evaluate(_cheapest_evaluation(config), workdir)
  assert read_records(workdir) == before
  assert again["neg_elbo"] == pytest.approx(summary["neg_elbo"], rel=1e-6)


def test_evaluate_workdir_restores_and_writes_every_figure(vae_heatmaps_run,
                                                         copy_run, tmp_path):
  config, finished, summary = vae_heatmaps_run
  workdir = copy_run(finished)
  shutil.rmtree(os.path.join(workdir, "figures"))
  os.remove(os.path.join(workdir, "eval.json"))
  result = vae_run.evaluate_workdir(workdir)
  assert result["neg_elbo"] == pytest.approx(summary["neg_elbo"], rel=1e-6)
  assert os.path.exists(os.path.join(workdir, "eval.json"))
  assert sorted(os.listdir(os.path.join(workdir, "figures"))) == sorted(
      f"{name}.png" for name in select_figures(config.eval.figures, RUN_FIGURES))
  shutil.rmtree(os.path.join(workdir, "figures"))
  vae_run.evaluate_workdir(workdir, "reconstructions,samples")
  assert sorted(os.listdir(os.path.join(workdir, "figures"))) == [
      "reconstructions.png", "samples.png"]
  with pytest.raises(ValueError, match="unknown figure"):
    vae_run.evaluate_workdir(workdir, "reconstructions,nope")
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match="config.json"):
    vae_run.evaluate_workdir(str(empty))


def test_evaluate_workdir_draws_user_points_on_a_real_model(vae_digits_run,
                                                            copy_run):
  workdir = copy_run(vae_digits_run)
  names = "trajectories,traversals,manifold,latent_pca"
  options = ExplorationOptions(trajectory_start="class:3",
                               trajectory_end="0.5,-0.5",
                               traversal_base="origin", manifold_dims="1,0",
                               view_line_start="digit=1")
  vae_run.evaluate_workdir(workdir, names, options)
  for name in names.split(","):
    image = mpimg.imread(os.path.join(workdir, "figures", f"{name}.png"))
    assert image[..., :3].std() > 0.02, name
  with pytest.raises(ValueError, match=r"--trajectory_end='1,2,3': 3 "
                     r"coordinate\(s\), but the latent space has 2 dims"):
    vae_run.evaluate_workdir(workdir, "trajectories",
                          ExplorationOptions(trajectory_end="1,2,3"))
  with pytest.raises(ValueError, match="--traversal_base='class:12': digit: "
                     "no test image has the class 12"):
    vae_run.evaluate_workdir(workdir, "traversals",
                          ExplorationOptions(traversal_base="class:12"))


# --- Resume and failures ------------------------------------------------------


class _Killed(BaseException):
  """Stands in for SIGKILL: escapes every handler, skips all cleanup."""


def test_crash_and_resume_equals_an_uninterrupted_run(vae_digits_run, tmp_path,
                                                      monkeypatch,
                                                      smoke_config):
  # The session's digits run is the uninterrupted one; the same config here.
  straight = vae_digits_run
  config = smoke_config(vae_digits, **{"eval.figures": "loss_curves"})
  crashed = str(tmp_path / "crashed")
  original_write = MetricsWriter.write

  def write_then_die(self, step, split, metrics):
    original_write(self, step, split, metrics)
    if step == 12 and split == "train":  # 4 steps past the step-8 checkpoint
      raise _Killed()

  monkeypatch.setattr(MetricsWriter, "write", write_then_die)
  with pytest.raises(_Killed):
    vae_run.train_and_evaluate(config, crashed)
  monkeypatch.setattr(MetricsWriter, "write", original_write)
  vae_run.train_and_evaluate(config, crashed)

  steps = [r["step"] for r in read_records(crashed) if r["split"] == "train"]
  assert steps == sorted(set(steps))  # no repeated or skipped log lines
  assert steps == [r["step"] for r in read_records(straight)
                   if r["split"] == "train"]
  with open(os.path.join(straight, "eval.json")) as file:
    digits_eval = json.load(file)
  assert digits_eval["latent_knn_accuracy"] > 0.14  # chance is 0.1
  state_a, meta_a = _latest_checkpoint(straight)
  state_b, meta_b = _latest_checkpoint(crashed)
  assert meta_a["step"] == meta_b["step"] == 2 * (256 // 32)
  for a, b in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b)):
    np.testing.assert_array_equal(a, b)


SIGNAL_EPOCHS = 16  # 128 steps: far more than a signal takes to arrive
SIGNAL_TOTAL_STEPS = SIGNAL_EPOCHS * (256 // 32)
SIGNAL_SETTINGS = {"train.epochs": SIGNAL_EPOCHS,
                   "eval.figures": "samples"}  # the run's fate, not figures


def _start_training(start_python, workdir):
  return start_python(
      "-m", "experiments.train",
      "--config=experiments/configs/vae_digits.py:smoke",
      f"--workdir={workdir}",
      *(f"--config.{key}={value}" for key, value in SIGNAL_SETTINGS.items()))


def _wait_for_checkpoint_past(workdir, step, process, timeout=120):
  deadline = time.monotonic() + timeout
  directory = os.path.join(workdir, "checkpoints")
  while time.monotonic() < deadline:
    assert process.poll() is None, process.stderr
    if os.path.isdir(directory):
      steps = [int(name) for name in os.listdir(directory) if name.isdigit()]
      if steps and max(steps) > step:
        return max(steps)
    time.sleep(0.05)
  raise TimeoutError(f"no checkpoint past step {step} in {timeout}s")


def test_sigterm_checkpoints_and_sigkill_resumes(tmp_path, start_python,
                                                 smoke_config, caplog):
  """The train command (forked as `python -m` runs it) survives SIGTERM
  (checkpoint, exit 143) and SIGKILL: the run then finishes from its last
  checkpoint as if never stopped."""
  workdir = str(tmp_path)
  process = _start_training(start_python, workdir)
  _wait_for_checkpoint_past(workdir, 0, process)
  process.send_signal(signal.SIGTERM)
  assert process.wait() == 143, process.stderr
  stopped_at = Checkpointer(workdir).latest_step()
  assert 0 < stopped_at < SIGNAL_TOTAL_STEPS

  # Resumes, then is killed without warning.
  process = _start_training(start_python, workdir)
  _wait_for_checkpoint_past(workdir, stopped_at + 8, process)
  process.send_signal(signal.SIGKILL)
  assert process.wait() == -signal.SIGKILL

  # The same run once more, in this process (what the command calls): it
  # takes over the dead process's lock and finishes from the checkpoint.
  caplog.set_level(logging.INFO)
  vae_run.train_and_evaluate(
      smoke_config(vae_digits, **SIGNAL_SETTINGS, **{"eval.iwae_samples": 0}),
      workdir)
  logged = lambda start: any(m.startswith(start) for m in caplog.messages)
  assert logged("Resumed from the checkpoint")
  assert logged("Took over the lock")  # the SIGKILLed process's
  assert Checkpointer(workdir).latest_step() == SIGNAL_TOTAL_STEPS
  steps = [r["step"] for r in read_records(workdir) if r["split"] == "train"]
  # None repeated or skipped.
  assert steps == list(range(4, SIGNAL_TOTAL_STEPS + 1, 4))
  assert os.path.exists(os.path.join(workdir, "eval.json"))


def test_nonfinite_loss_stops_with_step_and_term(tmp_path, smoke_config):
  """(The runner's tests cover keeping the last good checkpoint.)"""
  exploding = smoke_config(vae_digits, **{"train.epochs": 2,
                                          "loss.gaussian_scale": 1e-30,
                                          "loss.likelihood": "gaussian"})
  exploding_dir = str(tmp_path / "exploding")
  with pytest.raises(runner.NonFiniteLossError,
                     match=r"Non-finite recon.* at step 0"):
    vae_run.train_and_evaluate(exploding, exploding_dir)
  assert Checkpointer(exploding_dir).latest_step() is None
  # Settings are checked finite before anything runs, with the key named.
  with pytest.raises(ValueError, match=r"train.learning_rate=inf"):
    vae_run.train_and_evaluate(
        smoke_config(vae_digits, **{"train.learning_rate": float("inf")}),
        str(tmp_path / "inf"))
  assert not os.path.exists(tmp_path / "inf")


# --- Faults: nothing mixed, nothing lost ---------------------------------------


def _tree_bytes(directory):
  """{relative path: bytes} of every file under `directory`."""
  return {os.path.relpath(os.path.join(root, name), directory):
          open(os.path.join(root, name), "rb").read()
          for root, _, names in os.walk(directory) for name in names}


def test_a_refused_resume_leaves_the_workdir_byte_identical(
    vae_heatmaps_run, copy_run, smoke_config):
  config, finished, _ = vae_heatmaps_run
  workdir = copy_run(finished)
  before = _tree_bytes(workdir)
  changed = smoke_config(vae_heatmaps, **{
      "data.cache_dir": config.data.cache_dir, "train.epochs": 4,
      "train.learning_rate": 3e-3})
  with pytest.raises(ValueError, match=r"train.learning_rate: 0.001 -> "
                     r"0.003.*--init_from="):
    vae_run.train_and_evaluate(changed, workdir)
  assert _tree_bytes(workdir) == before
  # Without config.json, the checkpoint's shapes still refuse another model,
  # and a batch larger than the data is refused: no config.json is written.
  os.remove(os.path.join(workdir, "config.json"))
  before = _tree_bytes(workdir)
  other_model = smoke_config(vae_heatmaps, **{
      "data.cache_dir": config.data.cache_dir, "train.epochs": 4,
      "model.latent_dim": 5})
  with pytest.raises(ValueError, match=r"step 32 .* other shapes"):
    vae_run.train_and_evaluate(other_model, workdir)
  too_big = smoke_config(vae_heatmaps, **{
      "data.cache_dir": config.data.cache_dir, "train.batch_size": 1000})
  with pytest.raises(ValueError, match=r"train.batch_size=1000"):
    vae_run.train_and_evaluate(too_big, workdir)
  assert _tree_bytes(workdir) == before


def test_a_second_process_is_refused_at_once(vae_heatmaps_run, copy_run):
  config, finished, _ = vae_heatmaps_run
  workdir = copy_run(finished)
  lock = WorkdirLock(workdir)
  started = time.perf_counter()
  with pytest.raises(WorkdirBusyError, match=rf"process {os.getpid()} on"):
    vae_run.train_and_evaluate(config, workdir)
  assert time.perf_counter() - started < 5
  lock.release()


def _truncate_newest_checkpoint(workdir):
  """Halves the largest array-data file of the newest checkpoint."""
  directory = os.path.join(workdir, "checkpoints")
  newest = max(int(name) for name in os.listdir(directory) if name.isdigit())
  data = os.path.join(directory, str(newest), "state", "d")
  largest = max((os.path.join(data, n) for n in os.listdir(data)),
                key=os.path.getsize)
  with open(largest, "r+b") as file:
    file.truncate(os.path.getsize(largest) // 2)
  return newest


def test_a_corrupt_newest_checkpoint_falls_back_and_finishes_equal(
    vae_heatmaps_run, copy_run, smoke_config):
  config, finished, _ = vae_heatmaps_run
  workdir = copy_run(finished)
  newest = _truncate_newest_checkpoint(workdir)
  os.remove(os.path.join(workdir, "eval.json"))
  # Evaluation settings do not define the run: a cheaper evaluation here.
  cheaper = smoke_config(vae_heatmaps, **{
      "data.cache_dir": config.data.cache_dir, "train.epochs": 4,
      "eval.figures": "loss_curves", "eval.iwae_samples": 0})
  vae_run.train_and_evaluate(cheaper, workdir)
  checkpoints = os.listdir(os.path.join(workdir, "checkpoints"))
  assert f"corrupt-{newest}" in checkpoints and str(newest) in checkpoints
  state, meta = _latest_checkpoint(workdir)
  reference, reference_meta = _latest_checkpoint(finished)
  assert meta == reference_meta
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(reference)):
    np.testing.assert_array_equal(a, b)
  timing = ("steps_per_sec", "images_per_sec", "elapsed_sec")
  untimed = lambda d: [{k: v for k, v in r.items() if k not in timing}
                       for r in read_records(d)]
  assert untimed(workdir) == untimed(finished)
  # Evaluation falls back the same way.
  _truncate_newest_checkpoint(workdir)
  assert vae_run.restore_ensemble(workdir).step == newest - 8


def test_init_from_starts_a_new_run_from_another_runs_parameters(
    vae_digits_run, tmp_path, monkeypatch, smoke_config):
  source = vae_digits_run
  config = smoke_config(vae_digits, **{"eval.figures": "loss_curves",
                                       "train.learning_rate": 3e-3})
  started = []

  def capture(state, *args, **kwargs):
    started.append(state)
    raise _Killed()

  monkeypatch.setattr(runner, "train", capture)
  workdir = str(tmp_path / "continued")
  with pytest.raises(_Killed):
    vae_run.train_and_evaluate(config, workdir, init_from=source)
  state = started[0]
  saved, _ = _latest_checkpoint(source)
  for a, b in zip(jax.tree.leaves(state.params),
                  jax.tree.leaves(saved["params"])):
    np.testing.assert_array_equal(np.asarray(a), b)
  assert int(state.step) == 0  # a new run: its own schedule, a fresh Adam
  assert all(not np.any(np.asarray(leaf)) for leaf in
             jax.tree.leaves(state.opt_state) if np.ndim(leaf))
  with open(os.path.join(workdir, "config.json")) as file:
    recorded = json.load(file)
  assert recorded["init_from"] == os.path.abspath(source)
  assert recorded["train"]["learning_rate"] == 3e-3
  monkeypatch.undo()
  with pytest.raises(ValueError, match=r"init_from: '.*' -> None"):
    vae_run.train_and_evaluate(config, workdir)


# --- Ensembles ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, ensemble_config):
  workdir = str(tmp_path_factory.mktemp("ensemble"))
  config = ensemble_config((0.5, 1.0), (0, 1))
  summary = vae_run.train_and_evaluate(config, workdir)
  return config, workdir, summary


def test_ensemble_run_writes_every_member(ensemble_run):
  config, workdir, summary = ensemble_run
  with open(os.path.join(workdir, "eval.json")) as file:
    written = json.load(file)
  assert written == json.loads(json.dumps(summary))
  entries = written["members"]
  assert [(e["kl_weight"], e["seed"]) for e in entries] == [
      (0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)]
  for entry, member in zip(entries, ensemble_members(config)):
    out_dir = vae_run.member_dir(workdir, member)
    with open(os.path.join(out_dir, "eval.json")) as file:
      assert json.load(file)["neg_elbo"] == pytest.approx(entry["neg_elbo"])
    for name in ("loss_curves", "reconstructions"):
      assert os.path.getsize(os.path.join(out_dir, "figures",
                                          f"{name}.png")) > 5000
    assert entry["neg_elbo"] == pytest.approx(entry["recon"] + entry["kl"])
  records = read_records(workdir)
  last_step = max(r["step"] for r in records)
  finals = [r for r in records if r["step"] == last_step
            and r["split"] == "train"]
  assert sorted(r["member"] for r in finals) == [0, 1, 2, 3]
  state, meta = _latest_checkpoint(workdir)
  assert meta["members"] == [[0.5, 0], [0.5, 1], [1.0, 0], [1.0, 1]]
  assert jax.tree.leaves(state)[0].shape[0] == 4


def test_member_of_a_run_equals_its_one_member_run(ensemble_run, tmp_path,
                                                   ensemble_config):
  config, workdir, summary = ensemble_run
  single_dir = str(tmp_path / "single")
  single = vae_run.train_and_evaluate(
      ensemble_config(**{"loss.kl_weight": 1.0, "ensemble.seeds": (1,),
                         "eval.figures": "reconstructions"}), single_dir)
  member = summary["members"][3]  # (kl_weight 1.0, seed 1)
  for name in ("neg_elbo", "recon", "kl", "mse", "active_units"):
    assert member[name] == pytest.approx(single[name], rel=1e-4, abs=1e-5)
  ensemble_state, _ = _latest_checkpoint(workdir)
  single_state, _ = _latest_checkpoint(single_dir)
  for a, b in zip(jax.tree.leaves(ensemble_state["params"]),
                  jax.tree.leaves(single_state["params"])):
    np.testing.assert_allclose(a[3], b[0], rtol=2e-4, atol=2e-6)
  # One member keeps the single-run layout: metrics at the top, no members/.
  assert "members" not in single
  assert not os.path.exists(os.path.join(single_dir, workdir_lib.MEMBERS_DIR))
  assert os.path.exists(os.path.join(single_dir, "figures",
                                     "reconstructions.png"))


def test_restore_and_reevaluate_an_ensemble(ensemble_run, ensemble_config):
  _, workdir, summary = ensemble_run
  with pytest.raises(ValueError, match="member=<0..3>"):
    vae_run.restore_run(workdir)
  _, _, model, step = vae_run.restore_run(workdir, member=2)
  assert step == summary["step"] and model.latent_dim == 2
  again = vae_run.evaluate_workdir(workdir, "reconstructions")
  assert again["members"][2]["neg_elbo"] == pytest.approx(
      summary["members"][2]["neg_elbo"], rel=1e-6)
  with pytest.raises(ValueError, match="ensemble.kl_weights"):
    vae_run.train_and_evaluate(ensemble_config((0.5, 2.0), (0, 1)), workdir)


@pytest.mark.parametrize("key, value, problem", [
    ("model.kind", "gan", "vae"),
    ("eval.figures", "samples,nope", "nope"),
])
def test_the_run_checks_its_kind_and_figure_names(key, value, problem,
                                                   smoke_config):
  config = smoke_config(vae_digits, **{key: value})
  with pytest.raises(ValueError) as info:
    vae_run.validate(config)
  assert key in str(info.value) and problem in str(info.value)
  with pytest.raises(ValueError, match=r"model.kind='gan'.*\['ae', 'umap', "
                     r"'vae'\]"):
    run_module("gan")


def test_only_process_zero_writes_and_every_process_starts_distributed(
    tmp_path, monkeypatch, smoke_config):
  """As process 1 of a job: it starts jax.distributed, trains, evaluates,
  saves its part of the checkpoints, and writes no other file."""
  calls = []
  monkeypatch.setattr(distributed, "initialize", lambda: calls.append(1))
  monkeypatch.setattr(distributed, "is_chief", lambda: False)
  workdir = str(tmp_path)
  summary = vae_run.train_and_evaluate(
      smoke_config(vae_digits, **{"train.epochs": 1, "eval.iwae_samples": 0}),
      workdir)
  assert calls == [1] and np.isfinite(summary["neg_elbo"])
  assert sorted(os.listdir(workdir)) == ["checkpoints"]
