"""Every config loads; bad arguments and values fail with the key named."""

import glob
import importlib
import os
import subprocess
import sys

import pytest

from experiments.configs import vae_digits
from latent_jax.train import loop
from latent_jax.train.config_checks import validate_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_NAMES = sorted(
    os.path.basename(path)[:-3]
    for path in glob.glob(os.path.join(REPO, "experiments/configs/*.py"))
    if not os.path.basename(path).startswith(("_", "common")))


def test_the_required_configs_exist():
  for name in ("vae_heatmaps", "ae_heatmaps", "vae_mnist", "ae_mnist"):
    assert name in CONFIG_NAMES


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_loads_with_smoke_and_validates(name):
  module = importlib.import_module(f"experiments.configs.{name}")
  config = module.get_config("smoke")
  validate_config(config)
  assert config.train.epochs <= 2 and config.data.max_train <= 256
  for key in ("seed", "data.name", "model.arch", "model.latent_dim",
              "loss.kl_weight", "train.epochs", "train.batch_size",
              "train.learning_rate"):
    section, _, field = key.rpartition(".")
    assert field in (config[section] if section else config)
  assert "python -m experiments.train" in module.__doc__


def test_argument_string_sets_fields_and_rejects_typos():
  config = vae_digits.get_config("latent_dim=5,kl_weight=0.25,arch=seed002")
  assert (config.model.latent_dim, config.loss.kl_weight,
          config.model.arch) == (5, 0.25, "seed002")
  with pytest.raises(ValueError, match="latnt_dim"):
    vae_digits.get_config("latnt_dim=5")
  with pytest.raises(ValueError, match="latent_dim"):
    vae_digits.get_config("latent_dim=five")
  with pytest.raises(ValueError, match="smoke"):
    vae_digits.get_config("smok")
  config = vae_digits.get_config("")
  with pytest.raises(AttributeError):
    config.model.latnt_dim = 3  # locked: a typo cannot add a field


@pytest.mark.parametrize("key, value, problem", [
    ("model.latent_dim", 0, ">= 1"),
    ("loss.kl_weight", -0.5, ">= 0"),
    ("train.epochs", 0, ">= 1"),
    ("train.learning_rate", 0.0, "> 0"),
    ("data.test_fraction", 1.0, "between 0 and 1"),
    ("model.arch", "resnet", "seed002"),
    ("model.kind", "gan", "vae"),
    ("loss.likelihood", "poisson", "bernoulli"),
    ("data.name", "cifar", "heatmaps"),
    ("train.lr_schedule", "step", "cosine"),
    ("train.chunk_mode", "fast", "dispatch"),
    ("eval.figures", "samples,nope", "nope"),
])
def test_invalid_values_name_the_key(key, value, problem):
  config = vae_digits.get_config("smoke")
  section, field = key.split(".")
  with config.unlocked():
    config[section][field] = value
  with pytest.raises(ValueError) as info:
    validate_config(config)
  assert key in str(info.value) and problem in str(info.value)


def test_batch_larger_than_the_dataset_is_refused(tmp_path):
  config = vae_digits.get_config("smoke,batch_size=1000")
  with pytest.raises(ValueError, match=r"train.batch_size=1000.*256"):
    loop.train_and_evaluate(config, str(tmp_path))


def test_cli_reports_a_misspelled_override_without_a_traceback(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "experiments.train",
       "--config=experiments/configs/vae_digits.py:smoke",
       "--config.model.latnt_dim=3", f"--workdir={tmp_path}"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert "latnt_dim" in result.stderr and "Traceback" not in result.stderr
