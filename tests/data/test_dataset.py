"""Splits, dataset assembly, array validation and the dataset registry."""

from __future__ import annotations

import numpy as np
import pytest

from latent_jax import data
from latent_jax.data.dataset import make_dataset, train_test_split_indices, validate_arrays


# ------------------------------------------------------------------ split
def test_split_is_deterministic_partition():
  train, test = train_test_split_indices(11875, 0.2, seed=7)
  again_train, again_test = train_test_split_indices(11875, 0.2, seed=7)
  np.testing.assert_array_equal(train, again_train)
  np.testing.assert_array_equal(test, again_test)
  assert (train.size, test.size) == (9500, 2375)
  assert np.intersect1d(train, test).size == 0
  np.testing.assert_array_equal(
      np.sort(np.concatenate([train, test])), np.arange(11875)
  )
  other_train, _ = train_test_split_indices(11875, 0.2, seed=8)
  assert not np.array_equal(train, other_train)


@pytest.mark.parametrize(
    "num, fraction", [(1, 0.2), (10, 0.0), (10, 1.0), (3, 0.99)]
)
def test_split_rejects_empty_splits(num, fraction):
  with pytest.raises(ValueError):
    train_test_split_indices(num, fraction, seed=0)


def test_make_dataset_empty_split_names_dataset():
  with pytest.raises(ValueError, match="tiny"):
    make_dataset(
        "tiny",
        np.zeros((1, 2, 2)),
        np.zeros(1),
        ("y",),
        (False,),
        seed=0,
        test_fraction=0.2,
    )


def test_keras_notebook_split_is_the_keras_heatmap_notebooks_sklearn_split():
  from sklearn.model_selection import train_test_split

  train, test = train_test_split_indices(11875, 0.2, seed=5,
                                         split="keras_notebook")
  expected_train, expected_test = train_test_split(
      np.arange(11875), test_size=0.2, random_state=19
  )
  np.testing.assert_array_equal(train, np.sort(expected_train))
  np.testing.assert_array_equal(test, np.sort(expected_test))
  with pytest.raises(ValueError, match="split"):
    train_test_split_indices(100, 0.2, seed=0, split="stratified")


# -------------------------------------------------------- validate_arrays
@pytest.mark.parametrize(
    "images, labels",
    [
        (np.full((4, 3, 3), np.nan), np.zeros(4)),
        (np.zeros((4, 3, 3)), np.array([0.0, np.inf, 0.0, 0.0])),
        (np.zeros((4, 9)), np.zeros(4)),  # [N, D] is not an image
        (np.zeros((4, 3, 3, 1, 1)), np.zeros(4)),  # 5-D
        (np.zeros((4, 3, 3)), np.zeros((4, 2, 2))),  # 3-D labels
        (np.zeros((4, 3, 3)), np.zeros(5)),  # length mismatch
        (np.zeros((0, 3, 3)), np.zeros(0)),  # empty
        (np.full((4, 3, 3), 255.0), np.zeros(4)),  # not in [0, 1]
    ],
)
def test_validate_arrays_rejects(images, labels):
  with pytest.raises(ValueError, match="my_set"):
    validate_arrays("my_set", images, labels)


def test_validate_arrays_adds_axes():
  images, labels = validate_arrays("ok", np.zeros((4, 3, 5)), np.arange(4))
  assert images.shape == (4, 3, 5, 1) and labels.shape == (4, 1)
  assert images.dtype == labels.dtype == np.float32


# --------------------------------------------------------------- registry
def test_unknown_name_lists_known_names():
  with pytest.raises(ValueError) as info:
    data.load_dataset("cifar", seed=0)
  for name in ("heatmaps", "heatmaps_t", "digits", "mnist", "fashion_mnist"):
    assert name in str(info.value)


@pytest.mark.parametrize("name", ["heatmaps", "digits", "mnist"])
def test_unknown_option_is_rejected(name):
  with pytest.raises(ValueError, match="colour"):
    data.load_dataset(name, seed=0, colour="red")
