"""Value checks on the config sections every run shares: data, model, loss,
train, eval. Each error names the key and the problem; the model kind and
its own sections are checked by its run (latent_jax/runs)."""

from __future__ import annotations

import math

from latent_jax import losses
from latent_jax.data import DATASETS, is_dataset_name
from latent_jax.data.dataset import SPLITS
from latent_jax.models.presets import PRESETS
from latent_jax.train.optimizers import OPTIMIZERS, SCHEDULES
from latent_jax.train.chunk import resolve_chunk_mode
from latent_jax.train.step import COMPUTE_DTYPES


def _fail(key: str, value, problem: str) -> None:
  raise ValueError(f"Invalid config value {key}={value!r}: {problem}")


def _at_least(config, key: str, minimum, kind=(int,)) -> None:
  section, field = key.split(".")
  value = config[section][field]
  if isinstance(value, bool) or not isinstance(value, kind) or value < minimum:
    _fail(key, value, f"must be a number >= {minimum}.")


def _one_of(config, key: str, allowed) -> None:
  section, field = key.split(".")
  value = config[section][field]
  if value not in allowed:
    _fail(key, value, f"must be one of {sorted(allowed)}.")


def check_finite(section, prefix: str = "") -> None:
  """Raises ValueError naming the first float (or float in a list) that is
  NaN or infinite, in any section: such a setting never trains sensibly and
  would poison the saved state."""
  for key, value in section.items():
    name = f"{prefix}{key}"
    if hasattr(value, "items"):
      check_finite(value, f"{name}.")
      continue
    for item in value if isinstance(value, (list, tuple)) else (value,):
      if isinstance(item, float) and not math.isfinite(item):
        _fail(name, value, "must be a finite number.")


def validate_config(config) -> None:
  """Raises ValueError naming the first invalid key."""
  check_finite(config)
  if not is_dataset_name(config.data.name):
    _fail("data.name", config.data.name, f"must be one of {sorted(DATASETS)}"
          " or tfds:<name>.")
  _one_of(config, "data.split", SPLITS)
  test_fraction = config.data.test_fraction
  if not 0.0 < test_fraction < 1.0:
    _fail("data.test_fraction", test_fraction, "must be strictly between 0 "
          "and 1.")
  for key in ("data.max_train", "data.max_test"):
    section, field = key.split(".")
    if config[section][field] is not None:
      _at_least(config, key, 1)
  _one_of(config, "model.arch", PRESETS)
  _at_least(config, "model.latent_dim", 1)
  _one_of(config, "loss.likelihood", losses.LIKELIHOODS)
  _at_least(config, "loss.kl_weight", 0.0, (int, float))
  _at_least(config, "loss.kl_warmup_steps", 0)
  if config.loss.gaussian_scale <= 0:
    _fail("loss.gaussian_scale", config.loss.gaussian_scale, "must be > 0.")
  _at_least(config, "train.epochs", 1)
  _at_least(config, "train.batch_size", 1)
  if config.train.learning_rate <= 0:
    _fail("train.learning_rate", config.train.learning_rate, "must be > 0.")
  _one_of(config, "train.optimizer", OPTIMIZERS)
  _one_of(config, "train.lr_schedule", SCHEDULES)
  _one_of(config, "train.compute_dtype", COMPUTE_DTYPES)
  for key in ("train.steps_per_call", "train.log_every_steps",
              "train.checkpoint_every_steps", "train.keep_checkpoints",
              "train.lr_decay_steps", "eval.batch_size", "eval.num_images"):
    _at_least(config, key, 1)
  for key in ("train.eval_every_steps", "train.warmup_steps",
              "eval.iwae_samples"):
    _at_least(config, key, 0)
  _at_least(config, "train.grad_clip_norm", 0.0, (int, float))
  resolve_chunk_mode(config.train.chunk_mode)
