"""Datasets for the latent-space experiments, behind one registry.

Usage::

    from latent_jax.data import load_dataset
    ds = load_dataset("heatmaps", seed=0)          # offline, cached on disk
    ds.train_images.shape                          # (9500, 36, 36, 1)

Offline datasets: ``heatmaps``, ``heatmaps_t``, ``digits``; a researcher's
own images: ``arrays`` (an ``.npz``/``.npy`` file) and ``image_folder``.
``mnist``, ``fashion_mnist`` and any ``tfds:<name>`` (e.g. ``tfds:cifar10``)
need tensorflow-datasets data (see ``tfds_datasets``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from latent_jax.data.arrays import load_arrays
from latent_jax.data.dataset import (
    Dataset,
    check_likelihood,
    make_dataset,
    train_test_split_indices,
    validate_arrays,
)
from latent_jax.data.digits import load_digits
from latent_jax.data.heatmaps import load_heatmaps, load_heatmaps_t
from latent_jax.data.image_folder import load_image_folder
from latent_jax.data.tfds_datasets import (
    DatasetUnavailableError,
    load_fashion_mnist,
    load_mnist,
    load_tfds,
)

# Explicit registry (no import-time side effects or decorators): every loader
# takes keyword-only seed, test_fraction, cache_dir plus its own options.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "heatmaps": load_heatmaps,
    "heatmaps_t": load_heatmaps_t,
    "digits": load_digits,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "arrays": load_arrays,
    "image_folder": load_image_folder,
}
# `tfds:<name>`: any tensorflow-datasets image set, resolved by this prefix.
TFDS_PREFIX = "tfds:"

_COMMON_ARGS = frozenset({"seed", "test_fraction", "cache_dir"})


def is_dataset_name(name: str) -> bool:
  """Whether ``name`` is a key of :data:`DATASETS` or ``tfds:<name>``."""
  return name in DATASETS or (
      name.startswith(TFDS_PREFIX) and len(name) > len(TFDS_PREFIX))


def _loader(name: str) -> Callable[..., Dataset]:
  if name.startswith(TFDS_PREFIX) and len(name) > len(TFDS_PREFIX):
    return functools.partial(load_tfds, name[len(TFDS_PREFIX):])
  if name not in DATASETS:
    raise ValueError(
        f"unknown dataset {name!r}; known datasets: "
        f"{', '.join(sorted(DATASETS))}, or {TFDS_PREFIX}<name> for a "
        "tensorflow-datasets image set"
    )
  return DATASETS[name]


def dataset_options(name: str) -> tuple[str, ...]:
  """Names of the extra keyword options the loader of ``name`` accepts."""
  parameters = inspect.signature(_loader(name)).parameters
  return tuple(p for p in parameters if p not in _COMMON_ARGS)


def load_dataset(
    name: str,
    *,
    seed: int,
    test_fraction: float = 0.2,
    cache_dir: str | None = None,
    **options: Any,
) -> Dataset:
  """Loads a registered dataset.

  Args:
      name: A key of :data:`DATASETS`, or ``tfds:<name>``.
      seed: Seed of the train/test split (and of any dataset randomness,
          e.g. the ``heatmaps_t`` df rule or MNIST subsampling).
      test_fraction: Test share for datasets without an official split.
      cache_dir: Cache folder for generated data (default
          ``$LATENT_JAX_CACHE`` or ``~/.cache/latent_jax``).
      **options: Dataset-specific options, see :func:`dataset_options`.

  Returns:
      The :class:`Dataset`; images ``[N, H, W, C]`` float32 in ``[0, 1]``,
      labels ``[N, L]`` float32.

  Raises:
      ValueError: Unknown name or option, or invalid data.
      DatasetUnavailableError: A download-only dataset is not available.
  """
  loader = _loader(name)
  allowed = dataset_options(name)
  unknown = sorted(set(options) - set(allowed))
  if unknown:
    raise ValueError(
        f"unknown option(s) {unknown} for dataset {name!r}; "
        f"it accepts: {', '.join(allowed) if allowed else 'none'}"
    )
  return loader(
      seed=seed, test_fraction=test_fraction, cache_dir=cache_dir, **options
  )


__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetUnavailableError",
    "TFDS_PREFIX",
    "check_likelihood",
    "dataset_options",
    "is_dataset_name",
    "load_dataset",
    "make_dataset",
    "train_test_split_indices",
    "validate_arrays",
]
