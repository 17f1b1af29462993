"""End-to-end training: loss goes down, resume is exact, failures are clean."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from experiments.configs import ae_heatmaps, vae_digits, vae_heatmaps
from latent_jax.train import loop
from latent_jax.train.checkpointing import Checkpointer
from latent_jax.train.config_checks import FIGURES, selected_figures
from latent_jax.train.metrics_writer import MetricsWriter, read_records


def _smoke(module, arg="smoke", **overrides):
  config = module.get_config(arg)
  config.unlock()
  for path, value in overrides.items():
    section, field = path.split(".")
    config[section][field] = value
  config.lock()
  return config


def _final_params(workdir):
  checkpointer = Checkpointer(workdir)
  state, meta = checkpointer.restore_latest()
  checkpointer.close()
  return meta["step"], state


@pytest.fixture(scope="module")
def heatmap_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("vae_heatmaps"))
  cache = str(tmp_path_factory.mktemp("cache"))
  config = _smoke(vae_heatmaps, **{"data.cache_dir": cache,
                                   "train.epochs": 4})
  summary = loop.train_and_evaluate(config, workdir)
  return config, workdir, summary


def test_smoke_training_lowers_the_loss_and_writes_everything(heatmap_run):
  config, workdir, summary = heatmap_run
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
  assert selected_figures(config.eval.figures) == tuple(
      name for name in FIGURES if name != "latent_umap")
  for name in selected_figures(config.eval.figures):
    path = os.path.join(workdir, "figures", f"{name}.png")
    assert os.path.getsize(path) > 5000, name


def test_rerunning_a_finished_run_only_reevaluates(heatmap_run):
  config, workdir, summary = heatmap_run
  before = read_records(workdir)
  again = loop.train_and_evaluate(config, workdir)
  assert read_records(workdir) == before
  assert again["neg_elbo"] == pytest.approx(summary["neg_elbo"], rel=1e-6)


def test_evaluate_workdir_restores_and_writes_every_figure(heatmap_run,
                                                         tmp_path):
  config, workdir, summary = heatmap_run
  shutil.rmtree(os.path.join(workdir, "figures"))
  os.remove(os.path.join(workdir, "eval.json"))
  result = loop.evaluate_workdir(workdir)
  assert result["neg_elbo"] == pytest.approx(summary["neg_elbo"], rel=1e-6)
  assert os.path.exists(os.path.join(workdir, "eval.json"))
  assert sorted(os.listdir(os.path.join(workdir, "figures"))) == sorted(
      f"{name}.png" for name in selected_figures(config.eval.figures))
  shutil.rmtree(os.path.join(workdir, "figures"))
  loop.evaluate_workdir(workdir, "reconstructions,samples")
  assert sorted(os.listdir(os.path.join(workdir, "figures"))) == [
      "reconstructions.png", "samples.png"]
  with pytest.raises(ValueError, match="unknown figure"):
    loop.evaluate_workdir(workdir, "reconstructions,nope")
  with pytest.raises(FileNotFoundError, match="config.json"):
    loop.evaluate_workdir(str(tmp_path))


class _Killed(BaseException):
  """Stands in for SIGKILL: escapes every handler, skips all cleanup."""


def test_crash_and_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
  config = _smoke(vae_digits, **{"train.epochs": 3})
  straight = str(tmp_path / "straight")
  loop.train_and_evaluate(config, straight)

  crashed = str(tmp_path / "crashed")
  original_write = MetricsWriter.write

  def write_then_die(self, step, split, metrics):
    original_write(self, step, split, metrics)
    if step == 20 and split == "train":  # 4 steps past the step-16 checkpoint
      raise _Killed()

  monkeypatch.setattr(MetricsWriter, "write", write_then_die)
  with pytest.raises(_Killed):
    loop.train_and_evaluate(config, crashed)
  monkeypatch.setattr(MetricsWriter, "write", original_write)
  loop.train_and_evaluate(config, crashed)

  steps = [r["step"] for r in read_records(crashed) if r["split"] == "train"]
  assert steps == sorted(set(steps))  # no repeated or skipped log lines
  assert steps == [r["step"] for r in read_records(straight)
                   if r["split"] == "train"]
  with open(os.path.join(straight, "eval.json")) as file:
    digits_eval = json.load(file)
  assert digits_eval["latent_knn_accuracy"] > 0.14  # chance is 0.1
  step_a, state_a = _final_params(straight)
  step_b, state_b = _final_params(crashed)
  assert step_a == step_b == 3 * (256 // 32)
  for a, b in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b)):
    np.testing.assert_array_equal(a, b)


def test_nonfinite_loss_stops_with_step_and_term_and_keeps_checkpoint(
    tmp_path):
  workdir = str(tmp_path)
  loop.train_and_evaluate(_smoke(vae_digits, **{"train.epochs": 1}), workdir)
  exploding = _smoke(vae_digits, **{"train.epochs": 2,
                                    "loss.gaussian_scale": 1e-30,
                                    "loss.likelihood": "gaussian"})
  with pytest.raises(ValueError, match="loss.likelihood"):
    loop.train_and_evaluate(exploding, workdir)  # a different run: refused
  exploding_dir = str(tmp_path / "exploding")
  with pytest.raises(loop.NonFiniteLossError,
                     match=r"Non-finite recon.* at step 0"):
    loop.train_and_evaluate(exploding, exploding_dir)
  assert Checkpointer(exploding_dir).latest_step() is None
  # A learning rate that blows up mid-run: the step-8 checkpoint survives.
  blowup = _smoke(vae_digits, **{"train.epochs": 2,
                                 "train.learning_rate": 1e30})
  with pytest.raises(loop.NonFiniteLossError,
                     match=r"at step 9;.*checkpoint \(step 8\)"):
    loop.train_and_evaluate(blowup, workdir)
  assert Checkpointer(workdir).latest_step() == 8


def test_compare_two_runs(heatmap_run, tmp_path):
  from experiments.compare import compare
  _, vae_dir, vae_summary = heatmap_run
  ae_dir = str(tmp_path / "ae")
  loop.train_and_evaluate(
      _smoke(ae_heatmaps, **{"data.cache_dir": str(tmp_path / "cache")}),
      ae_dir)
  out = str(tmp_path / "compare")
  rows = compare([vae_dir, ae_dir], out, grid=3)
  assert [row["kind"] for row in rows] == ["vae", "ae"]
  assert rows[0]["neg_elbo"] == pytest.approx(vae_summary["neg_elbo"])
  with open(os.path.join(out, "compare.csv")) as file:
    header = file.readline()
  assert "gap_distance_mean" in header and "neg_elbo" in header
  assert "| gap_distance_mean |" in open(os.path.join(out, "compare.md")).read()
  assert os.path.getsize(os.path.join(out, "compare.png")) > 20_000
