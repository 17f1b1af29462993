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
      "eval": {"num_images": 8},
      "ensemble": {"kl_weights": (), "seeds": ()}, "umap": {"n_neighbors": 15}})
  for key, value in changes.items():
    section, field = key.split(".")
    config[section][field] = value
  return config


def test_start_run_writes_the_config_and_load_reads_it_back(tmp_path):
  workdir.start_run(_config(), str(tmp_path))
  assert workdir.load_run_config(str(tmp_path)).to_dict() == json.loads(
      json.dumps(_config().to_dict(), default=list))


def test_every_key_but_the_listed_ones_defines_the_run(tmp_path):
  workdir.start_run(_config(), str(tmp_path))
  before = open(tmp_path / "config.json").read()
  for key, value in (("train.learning_rate", 3e-3), ("train.epochs", 5),
                     ("umap.n_neighbors", 30), ("model.latent_dim", 3)):
    with pytest.raises(ValueError, match=rf"{key}: .* -> {value}.*--init_from"):
      workdir.check_same_run(workdir.run_record(_config(**{key: value})),
                             str(tmp_path))
  with pytest.raises(ValueError, match=r"init_from: None -> '/elsewhere'"):
    workdir.check_same_run(workdir.run_record(_config(), "/elsewhere"),
                           str(tmp_path))
  # A refused run leaves the workdir's config as it was.
  assert open(tmp_path / "config.json").read() == before
  assert not workdir.is_defining("train.log_every_steps")
  assert not workdir.is_defining("eval.iwae_samples")
  assert workdir.is_defining("train.learning_rate")
  assert workdir.is_defining("evaluation.anything")  # a prefix, not a stem
  changed = dict(workdir.run_record(_config()), eval={"num_images": 4})
  workdir.check_same_run(changed, str(tmp_path))  # not defining: passes


def test_init_from_must_be_another_run(tmp_path):
  workdir.check_init_from(None, str(tmp_path))
  with pytest.raises(ValueError, match="is the --workdir itself"):
    workdir.check_init_from(str(tmp_path), str(tmp_path) + "/")
  with pytest.raises(FileNotFoundError, match="holds no config.json"):
    workdir.check_init_from(str(tmp_path), str(tmp_path / "new"))


def test_write_json_is_atomic_and_eval_has_its_step(tmp_path):
  path = workdir.write_eval(str(tmp_path), 7, {"neg_elbo": 1.5})
  assert json.load(open(path)) == {"step": 7, "neg_elbo": 1.5}
  assert not os.path.exists(path + ".tmp")


def test_load_run_config_names_the_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="No config.json.*Train first"):
    workdir.load_run_config(str(tmp_path))
