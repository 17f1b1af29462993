"""TFDS datasets: offline failure with guidance, reading a prepared
array_record MNIST without TensorFlow, `tfds:<name>` (feature keys from the
real builders' features, a fake binarized MNIST, resizing, bad names)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from latent_jax import data
from latent_jax.data import tfds_datasets
from tests.data.fake_tfds import write_fake_prepared


def test_mnist_offline_fails_fast_with_guidance(tmp_path, monkeypatch):
  # This machine is offline; on one that is not, pretend to be, so the test
  # never downloads MNIST.
  real_probe = tfds_datasets.host_reachable
  monkeypatch.setattr(
      tfds_datasets,
      "host_reachable",
      lambda url, timeout=3.0: real_probe(url, timeout) and False,
  )
  start = time.monotonic()
  with pytest.raises((RuntimeError, ValueError)) as info:
    data.load_dataset("mnist", seed=0, data_dir=tmp_path)
  assert time.monotonic() - start < 30
  message = str(info.value)
  assert (
      "digits" in message and "heatmaps" in message and str(tmp_path) in message
  )


def _write_fake_prepared_mnist(data_dir, sizes):
  return write_fake_prepared(data_dir, "mnist", sizes)


def test_mnist_reads_prepared_array_record_without_tensorflow(tmp_path):
  written = _write_fake_prepared_mnist(tmp_path, {"train": 60, "test": 30})
  ds = data.load_dataset("mnist", seed=0, data_dir=str(tmp_path))
  assert ds.image_shape == (28, 28, 1) and (ds.num_train, ds.num_test) == (
      60,
      30,
  )
  np.testing.assert_array_equal(
      ds.train_images, written["train"][0] / np.float32(255)
  )
  np.testing.assert_array_equal(ds.test_labels[:, 0], written["test"][1])

  sub = data.load_dataset(
      "mnist", seed=1, data_dir=str(tmp_path), classes=(1, 5, 6), max_train=10
  )
  again = data.load_dataset(
      "mnist", seed=1, data_dir=str(tmp_path), classes=(1, 5, 6), max_train=10
  )
  assert sub.num_train == 10 and sub.num_test == 9
  assert set(np.unique(sub.train_labels)) <= {1, 5, 6}
  np.testing.assert_array_equal(sub.train_images, again.train_images)
  # Every kept image is the written image with the same index.
  train_images, train_labels = written["train"]
  for image, label in zip(sub.train_images, sub.train_labels[:, 0]):
    matches = np.flatnonzero(
        np.all(train_images / np.float32(255) == image, axis=(1, 2, 3))
    )
    assert matches.size == 1 and train_labels[matches[0]] == label


@pytest.mark.parametrize("name, keys", [
    ("cifar10", ("image", "label")), ("svhn_cropped", ("image", "label")),
    ("binarized_mnist", ("image", None)), ("celeb_a", ("image", None)),
    ("mnist", ("image", "label")),
])
def test_feature_keys_of_the_real_builders(name, keys, tmp_path):
  import tensorflow_datasets as tfds

  builder = tfds.builder(name, data_dir=str(tmp_path))  # info only, no data
  assert tuple(tfds_datasets.feature_keys(name, builder.info.features)) == keys


def test_generic_tfds_name_reads_mnist_and_resizes_to_rgb(tmp_path):
  written = _write_fake_prepared_mnist(tmp_path, {"train": 20, "test": 10})
  same = data.load_dataset("tfds:mnist", seed=0, data_dir=str(tmp_path))
  np.testing.assert_array_equal(same.train_images,
                                written["train"][0] / np.float32(255))
  assert same.categorical == (True,)
  rgb = data.load_dataset("tfds:mnist", seed=0, data_dir=str(tmp_path),
                          image_size=32, color="rgb")
  assert rgb.image_shape == (32, 32, 3)
  # Pillow as the reference: bilinear resize of the same image, grey -> RGB.
  import PIL.Image

  expected = np.asarray(PIL.Image.fromarray(written["test"][0][3, ..., 0])
                        .convert("RGB").resize((32, 32),
                                               PIL.Image.BILINEAR))
  np.testing.assert_array_equal(rgb.test_images[3] * 255, expected)


def test_binarized_mnist_keeps_0_1_pixels_and_has_an_index_label(tmp_path):
  written = write_fake_prepared(tmp_path, "binarized_mnist",
                                {"train": 12, "test": 6}, binary=True)
  ds = data.load_dataset("tfds:binarized_mnist", seed=0,
                         data_dir=str(tmp_path))
  np.testing.assert_array_equal(ds.test_images, written["test"][0])
  assert ds.label_names == ("index",) and ds.categorical == (False,)
  with pytest.raises(ValueError, match="no class label"):
    data.load_dataset("tfds:binarized_mnist", seed=0, data_dir=str(tmp_path),
                      classes=(1,))


def test_unknown_tfds_name_is_unavailable_with_close_names(tmp_path):
  with pytest.raises(data.DatasetUnavailableError, match="close: cifar10"):
    data.load_dataset("tfds:cifar1", seed=0, data_dir=str(tmp_path))
  assert data.is_dataset_name("tfds:cifar10")
  assert not data.is_dataset_name("tfds:") and not data.is_dataset_name("x")
