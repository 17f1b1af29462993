"""Config -> dataset and model: the pieces training and evaluation share."""

from __future__ import annotations

import dataclasses

from flax import nnx

from latent_jax.data import Dataset, load_dataset
from latent_jax.models import build_model


def load_configured_dataset(config) -> Dataset:
  """The dataset named by `config.data`, split by `config.seed`.

  `data.max_train` / `data.max_test` keep the first rows of each (already
  shuffled) split, so small runs still see a random subset.
  """
  options = {}
  for field in ("classes", "data_dir"):
    if config.data[field] is not None:
      value = config.data[field]
      options[field] = tuple(value) if field == "classes" else value
  dataset = load_dataset(config.data.name, seed=config.seed,
                         test_fraction=config.data.test_fraction,
                         cache_dir=config.data.cache_dir, **options)
  limits = {}
  if config.data.max_train is not None:
    limits["train_images"] = dataset.train_images[:config.data.max_train]
    limits["train_labels"] = dataset.train_labels[:config.data.max_train]
  if config.data.max_test is not None:
    limits["test_images"] = dataset.test_images[:config.data.max_test]
    limits["test_labels"] = dataset.test_labels[:config.data.max_test]
  return dataclasses.replace(dataset, **limits) if limits else dataset


def check_batch_size(config, dataset: Dataset) -> None:
  if config.train.batch_size > dataset.num_train:
    raise ValueError(
        f"Invalid config value train.batch_size={config.train.batch_size}: "
        f"larger than the {dataset.name!r} training split "
        f"({dataset.num_train} images). Lower it or raise data.max_train.")


def create_model(config, image_shape):
  """The VAE/AE of `config.model`, initialised from `config.seed`."""
  return build_model(config.model.kind, config.model.arch, image_shape,
                     config.model.latent_dim,
                     rngs=nnx.Rngs(params=config.seed))
