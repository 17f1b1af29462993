"""The parametric UMAP as an experiment: workdir, eval.json, figures, resume."""

import json
import os
import shutil
import signal

import numpy as np
import pytest

from experiments.configs import umap_digits
from latent_jax import ParametricUMAP
from latent_jax.evaluation.registry import UMAP_FIGURES
from latent_jax.runs import umap as umap_run
from latent_jax.umap import fit as fit_module
from latent_jax.train import distributed, runner
from latent_jax.train.checkpointing import Checkpointer
from latent_jax.train.metrics_writer import read_records


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("umap_run"))
  config = umap_digits.get_config("smoke")
  summary = umap_run.train_and_evaluate(config, workdir)
  return config, workdir, summary


def test_run_writes_metrics_figures_and_reducer(finished_run, non_blank_png):
  _, workdir, summary = finished_run
  with open(os.path.join(workdir, "eval.json")) as file:
    written = json.load(file)
  for key in ("trustworthiness", "knn_accuracy", "silhouette",
              "inverse_mse", "refined_trustworthiness",
              "refined_knn_accuracy"):
    assert key in written and np.isfinite(written[key])
  assert 0.5 < written["trustworthiness"] <= 1.0
  assert written == pytest.approx({"step": written["step"], **summary})
  for name in UMAP_FIGURES:
    assert non_blank_png(os.path.join(workdir, f"{name}.png")), name
  reducer = ParametricUMAP.load(os.path.join(workdir, umap_run.REDUCER_DIR))
  assert reducer.embedding_.shape == (256, 2)
  records = [json.loads(line) for line in open(
      os.path.join(workdir, "metrics.jsonl"))]
  assert {r["phase"] for r in records} == {"init", "umap"}


def test_resume_replays_the_same_steps(finished_run, tmp_path):
  config, workdir, _ = finished_run
  copy = str(tmp_path / "resumed")
  shutil.copytree(workdir, copy)
  # Drop the final checkpoint and the saved model: the rerun must resume
  # from the earlier checkpoint and end with the same parameters.
  checkpoints = os.path.join(copy, "checkpoints")
  steps = sorted(int(s) for s in os.listdir(checkpoints) if s.isdigit())
  assert len(steps) >= 2
  shutil.rmtree(os.path.join(checkpoints, str(steps[-1])))
  shutil.rmtree(os.path.join(copy, umap_run.REDUCER_DIR))
  umap_run.train_and_evaluate(config, copy)
  original = ParametricUMAP.load(os.path.join(workdir, umap_run.REDUCER_DIR))
  resumed = ParametricUMAP.load(os.path.join(copy, umap_run.REDUCER_DIR))
  np.testing.assert_allclose(resumed.embedding_, original.embedding_,
                             atol=1e-5)


def test_evaluate_workdir_redraws(finished_run):
  _, workdir, summary = finished_run
  os.remove(os.path.join(workdir, "umap_embedding.png"))
  again = umap_run.evaluate_workdir(workdir, "umap_embedding")
  assert again["trustworthiness"] == pytest.approx(summary["trustworthiness"])
  assert os.path.exists(os.path.join(workdir, "umap_embedding.png"))


@pytest.mark.parametrize("arg, override, message", [
    ("smoke,n_neighbors=1", None, "n_neighbors"),
    ("smoke,encoder=resnet", None, "model.arch='resnet'"),
    ("smoke", ("eval", "figures", "umap_embedding,spiral"), "spiral"),
])
def test_bad_configs_fail_before_training(tmp_path, arg, override, message):
  config = umap_digits.get_config(arg)
  if override:
    section, field, value = override
    config[section][field] = value
  with pytest.raises(ValueError, match=message):
    umap_run.train_and_evaluate(config, str(tmp_path))


def test_a_changed_umap_setting_is_refused_on_resume(finished_run):
  config, workdir, _ = finished_run
  changed = umap_digits.get_config("smoke,n_neighbors=30")
  with pytest.raises(ValueError, match=r"umap.n_neighbors: 15 -> 30"):
    umap_run.train_and_evaluate(changed, workdir)


def test_only_process_zero_writes_and_every_process_starts_distributed(
    tmp_path, monkeypatch):
  """As process 1 of a job: it calls jax.distributed's start, trains and
  computes the numbers, saves its part of the checkpoints, writes no files."""
  calls = []
  monkeypatch.setattr(distributed, "initialize", lambda: calls.append(1))
  monkeypatch.setattr(distributed, "is_chief", lambda: False)
  workdir = str(tmp_path)
  summary = umap_run.train_and_evaluate(umap_digits.get_config("smoke"),
                                        workdir)
  assert calls == [1]
  assert 0.5 < summary["trustworthiness"] <= 1.0
  assert sorted(os.listdir(workdir)) == ["checkpoints"]


def test_sigterm_checkpoints_and_the_rerun_equals_an_uninterrupted_run(
    finished_run, tmp_path, monkeypatch):
  """SIGTERM mid-training: a checkpoint, `Preempted` (the entry point's exit
  143), no eval.json; the same call then resumes and ends where an
  uninterrupted run ends."""
  config, finished, _ = finished_run
  workdir = str(tmp_path)
  record_chunk = fit_module.Fit.record_chunk
  stopped = []

  def record_then_sigterm(self, step, *args):
    record_chunk(self, step, *args)
    if not stopped:
      stopped.append(step)
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(fit_module.Fit, "record_chunk", record_then_sigterm)
  with pytest.raises(runner.Preempted, match="SIGTERM"):
    umap_run.train_and_evaluate(config, workdir)
  assert Checkpointer(workdir).latest_step() == stopped[0]
  assert not os.path.exists(os.path.join(workdir, "eval.json"))
  monkeypatch.undo()
  umap_run.train_and_evaluate(config, workdir)
  steps = [r["step"] for r in read_records(workdir)]
  assert steps == sorted(set(steps))  # none repeated after the resume
  resumed = ParametricUMAP.load(os.path.join(workdir, umap_run.REDUCER_DIR))
  original = ParametricUMAP.load(os.path.join(finished, umap_run.REDUCER_DIR))
  np.testing.assert_allclose(resumed.embedding_, original.embedding_,
                             atol=1e-5)
