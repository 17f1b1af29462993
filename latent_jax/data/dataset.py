"""The in-memory dataset container and the checks every loader goes through.

All loaders in this package return a :class:`Dataset`: images as float32
arrays ``[N, H, W, C]`` in ``[0, 1]`` (a researcher's float ``arrays`` may
hold other finite values, for a Gaussian likelihood) and labels as float32
arrays ``[N, L]``.
Labels are the generating parameters of synthetic data (variances,
correlation, degrees of freedom) or class ids stored as floats, so one array
type serves both regression-style latent probes and class colouring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

# All datasets here are images with values in [0, 1]; a Bernoulli decoder is
# the reference notebooks' choice (binary cross-entropy reconstruction loss).
DEFAULT_LIKELIHOOD = "bernoulli"


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A train/test split of images with per-example labels.

  Attributes:
      name: Registry name of the dataset, e.g. ``"heatmaps"``.
      train_images: float32 ``[N_train, H, W, C]`` with values in ``[0, 1]``.
      train_labels: float32 ``[N_train, L]``; generating parameters or class
          ids stored as floats.
      test_images: float32 ``[N_test, H, W, C]``.
      test_labels: float32 ``[N_test, L]``.
      label_names: Length-``L`` names of the label columns.
      categorical: Length-``L`` flags telling which columns are class ids.
      likelihood: Suggested decoder likelihood, ``"bernoulli"`` by default.
  """

  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  label_names: tuple[str, ...]
  categorical: tuple[bool, ...]
  likelihood: str = DEFAULT_LIKELIHOOD

  def __post_init__(self) -> None:
    # Cheap structural checks only (no pass over the data): they catch a
    # loader that mixes up columns or splits, which would otherwise only
    # surface as a confusing plot or shape error much later.
    num_labels = self.train_labels.shape[1]
    if self.test_labels.shape[1] != num_labels:
      raise ValueError(f"{self.name}: train/test label widths differ")
    if (
        len(self.label_names) != num_labels
        or len(self.categorical) != num_labels
    ):
      raise ValueError(
          f"{self.name}: label_names {self.label_names} and categorical "
          f"{self.categorical} must both have length {num_labels}"
      )
    if self.train_images.shape[1:] != self.test_images.shape[1:]:
      raise ValueError(
          f"{self.name}: train image shape {self.train_images.shape[1:]} != "
          f"test image shape {self.test_images.shape[1:]}"
      )

  @property
  def image_shape(self) -> tuple[int, int, int]:
    """``(H, W, C)`` of one image."""
    height, width, channels = self.train_images.shape[1:]
    return int(height), int(width), int(channels)

  @property
  def num_train(self) -> int:
    """Number of training examples."""
    return int(self.train_images.shape[0])

  @property
  def num_test(self) -> int:
    """Number of test examples."""
    return int(self.test_images.shape[0])


class Arrays(NamedTuple):
  """One split's validated images and labels."""

  images: np.ndarray  # [N, H, W, C] float32 in [0, 1]
  labels: np.ndarray  # [N, L] float32


class SplitIndices(NamedTuple):
  """A train/test partition of ``range(N)``."""

  train: np.ndarray  # [N_train] sorted int64
  test: np.ndarray  # [N_test] sorted int64


def validate_arrays(
    name: str, images: np.ndarray, labels: np.ndarray, unit_range: bool = True
) -> Arrays:
  """Checks and normalises one split's arrays.

  Args:
      name: Dataset name, put in every error message so that a failure deep
          inside an experiment says which data was bad.
      images: ``[N, H, W, C]`` or ``[N, H, W]`` (a channel axis is added).
      labels: ``[N]`` (a label axis is added) or ``[N, L]``.
      unit_range: Require image values in ``[0, 1]``. Only the ``arrays``
          loader passes False: a researcher's float images may hold other
          finite values, which :func:`check_likelihood` then allows for a
          Gaussian likelihood only.

  Returns:
      :class:`Arrays` ``(images, labels)``, float32 ``[N, H, W, C]`` and
      ``[N, L]`` (no copy when they already are float32).

  Raises:
      ValueError: Non-numeric, empty, wrong rank, mismatched ``N``,
          NaN/Inf values, or image values outside ``[0, 1]``.
  """
  images = np.asarray(images)
  labels = np.asarray(labels)
  for what, array in (("images", images), ("labels", labels)):
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
      raise ValueError(
          f"{name}: {what} must be numeric, got dtype {array.dtype}"
      )
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4:
    raise ValueError(
        f"{name}: images must have shape [N, H, W, C] or [N, H, W], "
        f"got shape {images.shape}"
    )
  if labels.ndim == 1:
    labels = labels[:, None]
  if labels.ndim != 2:
    raise ValueError(
        f"{name}: labels must have shape [N] or [N, L], got shape {labels.shape}"
    )
  if images.size == 0 or labels.size == 0:
    raise ValueError(
        f"{name}: empty arrays (images {images.shape}, labels {labels.shape})"
    )
  if images.shape[0] != labels.shape[0]:
    raise ValueError(
        f"{name}: {images.shape[0]} images but {labels.shape[0]} labels"
    )
  images = images.astype(np.float32, copy=False)
  labels = labels.astype(np.float32, copy=False)
  # min/max propagate NaN and show Inf, so two reductions check finiteness
  # without an [N, H, W, C] boolean temporary.
  low, high = float(images.min()), float(images.max())
  for what, bounds in (("images", (low, high)),
                       ("labels", (labels.min(), labels.max()))):
    if not np.all(np.isfinite(bounds)):
      raise ValueError(
          f"{name}: {what} contain NaN or Inf values; remove or replace them"
      )
  # A [0, 255] image slipping through would silently break a Bernoulli
  # likelihood, so the range is part of the contract.
  if unit_range and (low < 0.0 or high > 1.0):
    raise ValueError(
        f"{name}: image values must lie in [0, 1], got [{low}, {high}]"
    )
  return Arrays(images, labels)


def check_likelihood(dataset: Dataset, likelihood: str) -> None:
  """Bernoulli decoders need targets in [0, 1]; raises ValueError otherwise.

  Args:
      dataset: Images ``[N, H, W, C]`` of both splits are checked.
      likelihood: ``config.loss.likelihood``.
  """
  if likelihood != "bernoulli":
    return
  for split in ("train", "test"):
    images = getattr(dataset, f"{split}_images")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
      raise ValueError(
          f"{dataset.name}: {split} image values lie in [{low:g}, {high:g}], "
          "outside [0, 1], which loss.likelihood='bernoulli' needs: set "
          "--config.loss.likelihood=gaussian or rescale the images to [0, 1]"
      )


SPLITS = ("random", "keras_notebook")


def train_test_split_indices(
    num_examples: int, test_fraction: float, seed: int, split: str = "random"
) -> SplitIndices:
  """Deterministic random train/test partition of ``range(num_examples)``.

  The test size is ``ceil(test_fraction * num_examples)``, as in
  scikit-learn's ``train_test_split`` used by the reference notebooks (80/20).

  Args:
      num_examples: Number of examples ``N``.
      test_fraction: Fraction in ``(0, 1)`` that goes to the test split.
      seed: Seed of ``np.random.default_rng``; same seed, same split.
      split: ``"random"`` (a permutation from ``seed``) or
          ``"keras_notebook"``: the Keras VAE-vs-AE heatmap notebook's own
          split, scikit-learn's
          ``train_test_split(test_size=test_fraction, random_state=19)``,
          whatever ``seed`` is, to compare numbers with that notebook.

  Returns:
      :class:`SplitIndices` ``(train, test)``: sorted int64 arrays
      ``[N_train]`` and ``[N_test]`` that partition ``range(num_examples)``.

  Raises:
      ValueError: If ``test_fraction`` is not in ``(0, 1)`` or either split
          would be empty.
  """
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
  num_test = int(np.ceil(test_fraction * num_examples))
  num_train = num_examples - num_test
  if num_test < 1 or num_train < 1:
    raise ValueError(
        f"splitting {num_examples} examples with test_fraction={test_fraction} "
        f"gives {num_train} train / {num_test} test; both must be non-empty"
    )
  if split == "keras_notebook":
    from sklearn.model_selection import train_test_split

    train_idx, test_idx = train_test_split(
        np.arange(num_examples), test_size=test_fraction, random_state=19
    )
    return SplitIndices(np.sort(train_idx), np.sort(test_idx))
  if split != "random":
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
  permutation = np.random.default_rng(seed).permutation(num_examples)
  # Sorted indices keep the original order inside each split; training
  # loops shuffle per epoch anyway, and sorted gathers are cache friendly.
  return SplitIndices(
      np.sort(permutation[num_test:]), np.sort(permutation[:num_test])
  )


def make_dataset(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    categorical: Sequence[bool],
    seed: int,
    test_fraction: float,
    likelihood: str = DEFAULT_LIKELIHOOD,
    split: str = "random",
) -> Dataset:
  """Validates a full array set and splits it into a :class:`Dataset`.

  Args:
      name: Dataset name (used in error messages).
      images: ``[N, H, W, C]`` or ``[N, H, W]`` values in ``[0, 1]``.
      labels: ``[N]`` or ``[N, L]``.
      label_names: Length-``L`` column names.
      categorical: Length-``L`` class-id flags.
      seed: Split seed, see :func:`train_test_split_indices`.
      test_fraction: Fraction of examples in the test split.
      likelihood: Suggested decoder likelihood.
      split: See :func:`train_test_split_indices`.

  Returns:
      The split dataset.

  Raises:
      ValueError: Invalid arrays or a split that would be empty.
  """
  images, labels = validate_arrays(name, images, labels)
  try:
    train_idx, test_idx = train_test_split_indices(
        images.shape[0], test_fraction, seed, split
    )
  except ValueError as error:
    raise ValueError(f"{name}: {error}") from None
  return Dataset(
      name=name,
      train_images=images[train_idx],
      train_labels=labels[train_idx],
      test_images=images[test_idx],
      test_labels=labels[test_idx],
      label_names=tuple(label_names),
      categorical=tuple(bool(flag) for flag in categorical),
      likelihood=likelihood,
  )


def make_presplit_dataset(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    label_names: Sequence[str],
    categorical: Sequence[bool],
    likelihood: str = DEFAULT_LIKELIHOOD,
    unit_range: bool = True,
) -> Dataset:
  """Validates an official train/test split (e.g. MNIST) into a :class:`Dataset`.

  Args:
      name: Dataset name (used in error messages).
      train: ``(images, labels)`` of the training split, shapes as in
          :func:`validate_arrays`.
      test: ``(images, labels)`` of the test split.
      label_names: Length-``L`` column names.
      categorical: Length-``L`` class-id flags.
      likelihood: Suggested decoder likelihood.
      unit_range: See :func:`validate_arrays`.

  Returns:
      The dataset.

  Raises:
      ValueError: Invalid arrays; an empty split is reported as such.
  """
  train_images, train_labels = validate_arrays(f"{name} (train split)", *train,
                                               unit_range=unit_range)
  test_images, test_labels = validate_arrays(f"{name} (test split)", *test,
                                             unit_range=unit_range)
  return Dataset(
      name=name,
      train_images=train_images,
      train_labels=train_labels,
      test_images=test_images,
      test_labels=test_labels,
      label_names=tuple(label_names),
      categorical=tuple(bool(flag) for flag in categorical),
      likelihood=likelihood,
  )
