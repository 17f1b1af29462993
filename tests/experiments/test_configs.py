"""Every config loads with smoke and validates; argument strings set fields,
name presets and reject typos."""

import glob
import importlib
import os

import pytest

from experiments import configs
from experiments.configs import umap_digits, vae_digits
from latent_jax.train.config_checks import validate_config

CONFIG_NAMES = sorted(
    os.path.basename(path)[:-3]
    for path in glob.glob(os.path.join(os.path.dirname(configs.__file__),
                                       "*.py"))
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
  config = vae_digits.get_config("latent_dim=5,kl_weight=0.25,arch=keras_conv")
  assert (config.model.latent_dim, config.loss.kl_weight,
          config.model.arch) == (5, 0.25, "keras_conv")
  with pytest.raises(ValueError, match="latnt_dim"):
    vae_digits.get_config("latnt_dim=5")
  with pytest.raises(ValueError, match="latent_dim"):
    vae_digits.get_config("latent_dim=five")
  with pytest.raises(ValueError, match="smoke"):
    vae_digits.get_config("smok")
  config = vae_digits.get_config("")
  with pytest.raises(AttributeError):
    config.model.latnt_dim = 3  # locked: a typo cannot add a field


def test_encoder_aliases_name_presets():
  assert umap_digits.get_config("encoder=conv").model.arch == "small"
  assert umap_digits.get_config("").model.arch == "umap_mlp"
