"""A workdir holds one run: config.json, the same-run rule, JSON files."""

import json
import os

import ml_collections
import pytest

from latent_jax.train import workdir


def _config(**changes):
  config = ml_collections.ConfigDict({
      "seed": 0, "data": {"name": "digits"}, "model": {"latent_dim": 2},
      "loss": {"kl_weight": 1.0},
      "train": {"batch_size": 32, "epochs": 2, "learning_rate": 1e-3},
      "ensemble": {"kl_weights": (), "seeds": ()}, "umap": {"n_neighbors": 15}})
  for key, value in changes.items():
    section, field = key.split(".")
    config[section][field] = value
  return config


def test_start_run_writes_the_config_and_load_reads_it_back(tmp_path):
  workdir.start_run(_config(), str(tmp_path))
  assert workdir.load_run_config(str(tmp_path)).to_dict() == json.loads(
      json.dumps(_config().to_dict(), default=list))


def test_only_defining_keys_refuse_a_resume(tmp_path):
  workdir.start_run(_config(), str(tmp_path))
  # Epochs and the learning rate do not define the run here.
  workdir.check_same_run(_config(**{"train.epochs": 5}).to_dict(),
                         str(tmp_path))
  with pytest.raises(ValueError, match=r"model.latent_dim: 2 -> 3.*--workdir"):
    workdir.start_run(_config(**{"model.latent_dim": 3}), str(tmp_path))
  # A refused run leaves the workdir's config as it was.
  assert workdir.load_run_config(str(tmp_path)).model.latent_dim == 2
  with pytest.raises(ValueError, match="umap.n_neighbors"):
    workdir.check_same_run(_config(**{"umap.n_neighbors": 30}).to_dict(),
                           str(tmp_path), (*workdir.RUN_DEFINING_KEYS, "umap"))


def test_write_json_is_atomic_and_eval_has_its_step(tmp_path):
  path = workdir.write_eval(str(tmp_path), 7, {"neg_elbo": 1.5})
  assert json.load(open(path)) == {"step": 7, "neg_elbo": 1.5}
  assert not os.path.exists(path + ".tmp")


def test_load_run_config_names_the_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="No config.json.*Train first"):
    workdir.load_run_config(str(tmp_path))
