"""Datasets for the latent-space experiments, behind one registry.

Usage::

    from latent_jax.data import load_dataset
    ds = load_dataset("heatmaps", seed=0)          # offline, cached on disk
    ds.train_images.shape                          # (9500, 36, 36, 1)

Offline datasets: ``heatmaps``, ``heatmaps_t``, ``digits``.  ``mnist`` and
``fashion_mnist`` need tensorflow-datasets data (see ``tfds_datasets``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from latent_jax.data.dataset import (
    Dataset,
    make_dataset,
    train_test_split_indices,
    validate_arrays,
)
from latent_jax.data.digits import load_digits
from latent_jax.data.heatmaps import load_heatmaps, load_heatmaps_t
from latent_jax.data.tfds_datasets import DatasetUnavailableError, load_fashion_mnist, load_mnist

# Explicit registry (no import-time side effects or decorators): every loader
# takes keyword-only seed, test_fraction, cache_dir plus its own options.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "heatmaps": load_heatmaps,
    "heatmaps_t": load_heatmaps_t,
    "digits": load_digits,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
}

_COMMON_ARGS = frozenset({"seed", "test_fraction", "cache_dir"})


def dataset_options(name: str) -> tuple[str, ...]:
  """Names of the extra keyword options the loader of ``name`` accepts."""
  parameters = inspect.signature(DATASETS[name]).parameters
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
      name: A key of :data:`DATASETS`.
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
  if name not in DATASETS:
    raise ValueError(
        f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}"
    )
  allowed = dataset_options(name)
  unknown = sorted(set(options) - set(allowed))
  if unknown:
    raise ValueError(
        f"unknown option(s) {unknown} for dataset {name!r}; "
        f"it accepts: {', '.join(allowed) if allowed else 'none'}"
    )
  return DATASETS[name](
      seed=seed, test_fraction=test_fraction, cache_dir=cache_dir, **options
  )


__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetUnavailableError",
    "dataset_options",
    "load_dataset",
    "make_dataset",
    "train_test_split_indices",
    "validate_arrays",
]
