"""The data sets of `benchmark umap --protocol=paper`, by name: each loads
one fixed train / held-out split of flat float32 points and class labels.

`mnist` and `fashion_mnist` need tensorflow-datasets data (the paper's
split: 50,000 of the train split, scored on the 10,000 test images); the
others are offline. Reason for fixed splits: the seeds vary the
estimators, so both are judged on the same points.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from latent_jax.data import load_dataset
from latent_jax.data.clusters import synthetic_clusters
from latent_jax.data.digits import mnist_like_digits

SPLIT_SEED = 0  # every set has one split; the seeds vary the estimators


class Split(NamedTuple):
  """One set's fixed split (labels None: no classes)."""
  train: np.ndarray                # [N, D] float32
  train_labels: np.ndarray | None  # [N] int class ids
  test: np.ndarray                 # [M, D] float32
  test_labels: np.ndarray | None   # [M] int class ids


class ProtocolSet(NamedTuple):
  """A data set of the protocol."""
  description: str
  load: Callable[[], Split]  # raises DatasetUnavailableError: skipped
  fit_time_only: bool = False


def _flat(images: np.ndarray) -> np.ndarray:
  return np.asarray(images, np.float32).reshape(len(images), -1)


def _registered(name: str, **options) -> Split:
  """A `latent_jax.data` set, flattened; class labels if its first label
  column is categorical."""
  data = load_dataset(name, seed=SPLIT_SEED, **options)

  def labels(rows: np.ndarray) -> np.ndarray | None:  # rows: [N, L]
    return rows[:, 0].astype(np.int64) if data.categorical[0] else None

  return Split(_flat(data.train_images), labels(data.train_labels),
               _flat(data.test_images), labels(data.test_labels))


def _cut(points: np.ndarray, labels: np.ndarray, num_train: int) -> Split:
  """Generated points (drawn in random order): the first `num_train` train."""
  points = _flat(points)
  return Split(points[:num_train], labels[:num_train], points[num_train:],
               labels[num_train:])


PROTOCOL_SETS: dict[str, ProtocolSet] = {
    "mnist": ProtocolSet(
        "tfds MNIST: 50,000 of train / the 10,000 test (the paper's)",
        lambda: _registered("mnist", max_train=50_000)),
    "fashion_mnist": ProtocolSet(
        "tfds Fashion-MNIST: 50,000 of train / the 10,000 test",
        lambda: _registered("fashion_mnist", max_train=50_000)),
    "digits": ProtocolSet("scikit-learn digits, 8x8, 80/20",
                          lambda: _registered("digits")),
    "mnist_like": ProtocolSet(
        "MNIST-like digits, 28x28: 5,000 / 1,000",
        lambda: _cut(*mnist_like_digits(6_000, seed=SPLIT_SEED), 5_000)),
    "clusters": ProtocolSet(
        "10 clusters on an 8-D sheet in 784-D: 5,000 / 1,000",
        lambda: _cut(*synthetic_clusters(6_000, seed=SPLIT_SEED), 5_000)),
    "heatmaps": ProtocolSet("Gaussian heatmaps, 36x36, 80/20 (no classes)",
                            lambda: _registered("heatmaps")),
    "synthetic": ProtocolSet(
        "MNIST-like digits, 28x28: 100,000 / 25,000 (fit time only)",
        lambda: _cut(*mnist_like_digits(125_000, seed=SPLIT_SEED), 100_000),
        fit_time_only=True),
}
