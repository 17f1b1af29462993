"""Config -> dataset and model: the pieces training and evaluation share."""

from __future__ import annotations

import dataclasses

import numpy as np
from flax import nnx

from latent_jax.data import (Dataset, check_likelihood, dataset_options,
                             load_dataset)
from latent_jax.models import build_model
from latent_jax.models.presets import PRESETS, check_input_shape

# config.data fields that load_dataset takes itself or that apply after it.
_LOADER_ARGS = frozenset({"name", "test_fraction", "cache_dir", "max_train",
                          "max_test"})


def load_configured_dataset(config) -> Dataset:
  """The dataset named by `config.data`, split by `config.seed`, checked
  against the config before any model is built or compiled.

  Every other `config.data` field that is not None is passed to the loader
  when it takes an option of that name (`dataset_options`); one it does not
  take is an error naming the field. `data.max_train` / `data.max_test`
  keep a random subset (drawn from `config.seed`, in split order) of each
  split. Then the images must suit `loss.likelihood` (`check_likelihood`)
  and `model.arch` (`check_input_shape`).
  """
  name = config.data.name
  allowed = dataset_options(name)
  options = {}
  for field, value in config.data.items():
    if field in _LOADER_ARGS or value is None:
      continue
    if field == "split" and value == "random":  # every split's default
      continue
    if field not in allowed and field != "split":
      raise ValueError(
          f"Invalid config value data.{field}={value!r}: dataset {name!r} "
          f"takes no {field!r} (it takes: {', '.join(allowed) or 'none'}); "
          f"unset it.")
    options[field] = tuple(value) if isinstance(value, list) else value
  dataset = load_dataset(name, seed=config.seed,
                         test_fraction=config.data.test_fraction,
                         cache_dir=config.data.cache_dir, **options)
  rng = np.random.default_rng(config.seed)
  limits = {}
  for split, limit in (("train", config.data.max_train),
                       ("test", config.data.max_test)):
    images = getattr(dataset, f"{split}_images")
    if limit is not None and limit < len(images):
      keep = np.sort(rng.choice(len(images), size=limit, replace=False))
      limits[f"{split}_images"] = images[keep]
      limits[f"{split}_labels"] = getattr(dataset, f"{split}_labels")[keep]
  dataset = dataclasses.replace(dataset, **limits) if limits else dataset
  check_likelihood(dataset, config.loss.likelihood)
  if config.model.arch in PRESETS:  # an unknown name: validate_config's
    check_input_shape(config.model.arch, dataset.image_shape)
  return dataset


def check_batch_size(config, dataset: Dataset) -> None:
  if config.train.batch_size > dataset.num_train:
    raise ValueError(
        f"Invalid config value train.batch_size={config.train.batch_size}: "
        f"larger than the {dataset.name!r} training split "
        f"({dataset.num_train} images). Lower it or raise data.max_train.")


def create_model(config, image_shape, seed: int | None = None):
  """The VAE/AE of `config.model`, initialised from `seed` (`config.seed`)."""
  return build_model(config.model.kind, config.model.arch, image_shape,
                     config.model.latent_dim,
                     rngs=nnx.Rngs(params=config.seed if seed is None
                                   else seed))
