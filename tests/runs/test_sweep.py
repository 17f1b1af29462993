"""Latent-dim sweeps: one summary row per member, resumable; the
one-program sweep's members against d-dim models trained alone."""

import csv
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments.configs import ablation
from latent_jax.models.autoencoders import VAE, restrict_latent
from latent_jax.runs import sweep
from latent_jax.runs.member_models import MemberModels, sized_config
from latent_jax.runs.vae import restore_ensemble, restore_run
from latent_jax.train import setup
from latent_jax.train.chunk import make_chunk
from latent_jax.train.ensemble import (ensemble_members, member_keys,
                                       stack_members)
from latent_jax.train.metrics_writer import read_records
from latent_jax.train.optimizers import make_optimizer
from latent_jax.train.step import (VAEInputs, init_ensemble_state,
                                   make_vae_update)


def _smoke_sweep(tmp_path_factory, smoke_config, **overrides):
  # The smoke ablation grid (2 latent dims x 2 KL weights x 2 seeds) on the
  # 8x8 digits, which have a class label (so the kNN column appears).
  config = smoke_config(ablation, "smoke,data=digits,epochs=1",
                        **{"eval.figures": "reconstructions",  # the sweep
                           "eval.iwae_samples": 0,             # draws its own
                           **overrides})
  one_program = config.sweep.one_program
  workdir = str(tmp_path_factory.mktemp("sweep"))
  dims = sweep.latent_dims(config)
  sweep.run_sweep(config, workdir)
  rows = sweep.write_summary(workdir, dims, one_program=one_program)
  return config, workdir, dims, rows


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory, smoke_config):
  return _smoke_sweep(tmp_path_factory, smoke_config)


@pytest.fixture(scope="module")
def one_program_sweep(tmp_path_factory, smoke_config):
  # One seed (4 members) keeps it cheap; the CLI's smoke grid has all 8.
  return _smoke_sweep(tmp_path_factory, smoke_config,
                      **{"sweep.one_program": True, "ensemble.seeds": (0,)})


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


# --- One program for the whole grid -------------------------------------------


def test_one_program_sweep_writes_the_same_summary(smoke_sweep,
                                                   one_program_sweep):
  _, workdir, dims, rows = one_program_sweep
  cells = lambda table: sorted((int(r["latent_dim"]), float(r["kl_weight"]),
                                int(r["seed"])) for r in table)
  with open(os.path.join(workdir, "summary.csv")) as file:
    table = list(csv.DictReader(file))
  per_dim = [r for r in smoke_sweep[3] if r["seed"] == 0]
  assert len(table) == 4 and cells(table) == cells(per_dim)
  assert list(table[0]) == list(sweep.SUMMARY_COLUMNS)
  run_dir = sweep.one_program_workdir(workdir)
  with open(os.path.join(run_dir, "eval.json")) as file:
    entries = json.load(file)["members"]
  for row, entry in zip(table, entries):  # the run's members, dim major
    assert int(row["latent_dim"]) == entry["latent_dim"]
    for name in ("neg_elbo", "kl", "active_units", "latent_knn_accuracy"):
      assert float(row[name]) == pytest.approx(entry[name])
    assert 0 <= float(row["active_units"]) <= int(row["latent_dim"])
  assert len(os.listdir(os.path.join(run_dir, "members"))) == 4
  for name in ("metrics_vs_kl_weight", "rate_distortion",
               "reconstructions_per_cell"):
    assert os.path.getsize(os.path.join(workdir, f"{name}.png")) > 20_000
  # A member restores as the model of its own latent size.
  model = restore_run(run_dir, member=1).model
  assert model.latent_dim == 2 and model.mean_head.kernel.shape[-1] == 2


class _WideNoiseVAE(VAE):
  """A d-dim VAE fed the noise of the D-dim one: eps[:, :d] of [B, D]."""

  def sample_posterior(self, mean, log_variance, key):
    noise = jax.random.normal(key, (mean.shape[0], self.full_dim))
    return mean + jnp.exp(0.5 * log_variance) * noise[:, :mean.shape[1]]


def test_a_masked_member_equals_its_model_trained_alone(one_program_sweep):
  config, workdir, _, _ = one_program_sweep
  run = restore_ensemble(sweep.one_program_workdir(workdir))
  member = run.members[1]
  assert (member.latent_dim, run.config.model.latent_dim) == (2, 3)
  dataset = run.dataset
  # The d-dim model from the slice of the member's initial D-dim weights.
  start = nnx.split(setup.create_model(run.config, dataset.image_shape,
                                       member.seed))[1]
  alone = setup.create_model(sized_config(run.config, 2), dataset.image_shape)
  wide = _WideNoiseVAE(alone.encoder, alone.decoder, 2, rngs=nnx.Rngs(0))
  wide.full_dim = 3
  graphdef, shapes = nnx.split(wide)
  params = restrict_latent(start, shapes, 3, 2)
  steps = run.step
  optimizer, _ = make_optimizer(run.config.train, steps)
  keys = member_keys(run.config, run.members)
  update = make_vae_update(
      graphdef, optimizer, likelihood=config.loss.likelihood,
      gaussian_scale=config.loss.gaussian_scale,
      kl_warmup_steps=config.loss.kl_warmup_steps,
      batch_size=config.train.batch_size, num_train=dataset.num_train)
  result = make_chunk(update)(
      init_ensemble_state(stack_members([params]), optimizer),
      VAEInputs(jnp.asarray(dataset.train_images), keys.data_key,
                keys.model_keys[1:2], keys.kl_weights[1:2]), steps)
  trained = MemberModels(run.config, dataset.image_shape, run.model,
                         run.members).params(member, run.params[1])
  jax.tree.map(lambda got, want: np.testing.assert_allclose(
      got, want[0], rtol=1e-4, atol=1e-5), trained, result.state.params)
  moved = jax.tree.leaves(jax.tree.map(
      lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
      trained, params))
  assert max(moved) > 1e-3  # it trained


def test_bad_one_program_settings_name_the_key(smoke_config, monkeypatch):
  config = smoke_config(ablation, "smoke", **{"sweep.one_program": True,
                                              "sweep.latent_dims": ()})
  with pytest.raises(ValueError, match=r"sweep\.latent_dims=\(\)"):
    sweep.latent_dims(config)
  with pytest.raises(ValueError, match=r"sweep\.latent_dims=\(\)"):
    ensemble_members(config)
  config = smoke_config(ablation, "smoke", **{"sweep.one_program": True,
                                              "sweep.latent_dims": (2, 5)})
  with pytest.raises(ValueError, match=r"model\.latent_dim=3"):
    ensemble_members(config)  # a mask of 5 dims on a 3-dim model
  with pytest.raises(ValueError, match="latent_dim_index"):
    sweep.run_sweep(config, "/nonexistent", dims=(2,))
  big = sweep.one_program_config(config)
  members = ensemble_members(big)
  assert [m.latent_dim for m in members] == [2] * 4 + [5] * 4
  assert members[5].name == "latent5_kl0.5_seed1"
  model = nnx.eval_shape(lambda: setup.create_model(big, (8, 8, 1)))
  original = setup.create_model
  monkeypatch.setattr(setup, "create_model", lambda c, shape, seed=None: (
      original(c, (16, 16, 1) if c.model.latent_dim < 5 else shape, seed)))
  with pytest.raises(ValueError, match=r"sweep\.one_program"):
    MemberModels(big, (8, 8, 1), model, members)
