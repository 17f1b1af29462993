"""Latent-dim sweeps: one summary row per member, resumable."""

import csv
import json
import os

import pytest

from experiments.configs import ablation
from latent_jax.runs import sweep
from latent_jax.train.ensemble import ensemble_members
from latent_jax.train.metrics_writer import read_records


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory, smoke_config):
  # The smoke ablation grid (2 latent dims x 2 KL weights x 2 seeds) on the
  # 8x8 digits, which have a class label (so the kNN column appears).
  config = smoke_config(ablation, "smoke,data=digits,epochs=1",
                        **{"eval.figures": "reconstructions",  # the sweep
                           "eval.iwae_samples": 0})            # draws its own
  workdir = str(tmp_path_factory.mktemp("sweep"))
  dims = sweep.latent_dims(config)
  sweep.run_sweep(config, workdir)
  rows = sweep.write_summary(workdir, dims)
  return config, workdir, dims, rows


def test_summary_has_one_row_per_member(smoke_sweep):
  config, workdir, dims, rows = smoke_sweep
  assert dims == (2, 3)
  members = ensemble_members(config)
  assert len(members) == 4
  with open(os.path.join(workdir, "summary.csv")) as file:
    table = list(csv.DictReader(file))
  assert len(table) == len(rows) == len(dims) * len(members) == 8
  assert list(table[0]) == list(sweep.SUMMARY_COLUMNS)
  assert {(int(r["latent_dim"]), float(r["kl_weight"]), int(r["seed"]))
          for r in table} == {(d, m.kl_weight, m.seed) for d in dims
                              for m in members}
  for row in table:  # each row is its member's eval.json entry
    with open(os.path.join(sweep.sub_workdir(workdir, int(row["latent_dim"])),
                           "eval.json")) as file:
      entries = json.load(file)["members"]
    entry = next(e for e in entries if e["kl_weight"] == float(
        row["kl_weight"]) and e["seed"] == int(row["seed"]))
    for name in ("neg_elbo", "recon", "kl", "active_units",
                 "latent_knn_accuracy"):
      assert float(row[name]) == pytest.approx(entry[name])
    assert float(row["neg_elbo"]) == pytest.approx(
        float(row["recon"]) + float(row["kl"]), rel=1e-5)
    assert 0 <= float(row["active_units"]) <= int(row["latent_dim"])
    assert float(row["train_seconds"]) > 0
  for name in ("metrics_vs_kl_weight", "rate_distortion",
               "reconstructions_per_cell"):
    assert os.path.getsize(os.path.join(workdir, f"{name}.png")) > 20_000


def test_rerunning_the_sweep_resumes_without_training(smoke_sweep):
  config, workdir, dims, rows = smoke_sweep
  before = {d: read_records(sweep.sub_workdir(workdir, d)) for d in dims}
  sweep.run_sweep(config, workdir)
  assert {d: read_records(sweep.sub_workdir(workdir, d))
          for d in dims} == before
  again = sweep.write_summary(workdir, dims)
  assert [r["neg_elbo"] for r in again] == pytest.approx(
      [r["neg_elbo"] for r in rows], rel=1e-6)


def test_train_seconds_sums_the_logged_windows():
  records = [
      {"step": 4, "split": "train", "steps_per_sec": 2.0, "member": 0},
      {"step": 4, "split": "train", "steps_per_sec": 2.0, "member": 1},
      {"step": 4, "split": "test", "neg_elbo": 1.0},
      {"step": 10, "split": "train", "steps_per_sec": 3.0, "member": 0},
      {"step": 10, "split": "train", "steps_per_sec": 3.0, "member": 1},
  ]
  assert sweep.train_seconds(records) == pytest.approx(4 / 2 + 6 / 3)


def test_bad_sweep_settings_name_the_key():
  config = ablation.get_config("smoke")
  config.unlock()
  config.sweep.latent_dims = (2, 0)
  with pytest.raises(ValueError, match=r"sweep\.latent_dims"):
    sweep.latent_dims(config)
  config.sweep.latent_dims = (2, 2)
  with pytest.raises(ValueError, match="repeat"):
    sweep.latent_dims(config)
  assert sweep.select_dims((2, 3, 5), index=2) == (5,)
  assert sweep.select_dims((2, 3, 5), only=[5, 2]) == (2, 5)
  with pytest.raises(ValueError, match="latent_dim_index"):
    sweep.select_dims((2, 3), index=2)
  with pytest.raises(ValueError, match=r"\[4\]"):
    sweep.select_dims((2, 3), only=[4])
