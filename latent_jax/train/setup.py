"""Config -> dataset and model: the pieces training and evaluation share."""

from __future__ import annotations

import dataclasses

import numpy as np
from flax import nnx

from latent_jax.data import Dataset, load_dataset
from latent_jax.models import build_model


def load_configured_dataset(config) -> Dataset:
  """The dataset named by `config.data`, split by `config.seed`.

  `data.max_train` / `data.max_test` keep a random subset (drawn from
  `config.seed`, in split order) of each split.
  """
  options = {}
  for field in ("classes", "data_dir"):
    if config.data[field] is not None:
      value = config.data[field]
      options[field] = tuple(value) if field == "classes" else value
  if config.data.split != "random":  # only datasets without official splits
    options["split"] = config.data.split
  dataset = load_dataset(config.data.name, seed=config.seed,
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
  return dataclasses.replace(dataset, **limits) if limits else dataset


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
