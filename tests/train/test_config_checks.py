"""Invalid config values fail with the key named."""

import pytest

from experiments.configs import vae_digits
from latent_jax.train.config_checks import validate_config


@pytest.mark.parametrize("key, value, problem", [
    ("model.latent_dim", 0, ">= 1"),
    ("loss.kl_weight", -0.5, ">= 0"),
    ("train.epochs", 0, ">= 1"),
    ("train.learning_rate", 0.0, "> 0"),
    ("data.test_fraction", 1.0, "between 0 and 1"),
    ("model.arch", "resnet", "keras_conv"),
    ("loss.likelihood", "poisson", "bernoulli"),
    ("data.name", "cifar", "heatmaps"),
    ("train.lr_schedule", "step", "cosine"),
    ("train.chunk_mode", "fast", "dispatch"),
])
def test_invalid_values_name_the_key(key, value, problem):
  config = vae_digits.get_config("smoke")
  section, field = key.split(".")
  with config.unlocked():
    config[section][field] = value
  with pytest.raises(ValueError) as info:
    validate_config(config)
  assert key in str(info.value) and problem in str(info.value)


@pytest.mark.parametrize("key, value", [
    ("train.learning_rate", float("inf")), ("train.learning_rate", float("nan")),
    ("loss.kl_weight", float("nan")), ("train.lr_decay_rate", float("-inf")),
    ("ensemble.kl_weights", (0.5, float("nan"))),
])
def test_nonfinite_values_are_refused_with_the_key(key, value):
  config = vae_digits.get_config("smoke")
  section, field = key.split(".")
  with config.unlocked():
    config[section][field] = value
  with pytest.raises(ValueError, match=rf"{key}=.*must be a finite number"):
    validate_config(config)
