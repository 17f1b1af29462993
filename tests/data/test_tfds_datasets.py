"""TFDS datasets: offline failure with guidance, and reading a prepared
array_record MNIST without TensorFlow."""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest

from latent_jax import data
from latent_jax.data import tfds_datasets


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


def _write_fake_prepared_mnist(
    data_dir, sizes: dict[str, int]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Writes an array_record MNIST as `tfds build` would, without TensorFlow."""
  import PIL.Image
  import tensorflow_datasets as tfds
  from array_record.python.array_record_module import ArrayRecordWriter
  from tensorflow_datasets.core import naming, splits
  from tensorflow_datasets.proto import tf_example_pb2

  builder = tfds.builder("mnist", data_dir=data_dir, file_format="array_record")
  builder.data_path.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  written, infos = {}, []
  for split, size in sizes.items():
    images = rng.integers(0, 256, (size, 28, 28, 1), dtype=np.uint8)
    labels = np.arange(size) % 10
    template = naming.ShardedFileTemplate(
        data_dir=builder.data_path,
        dataset_name="mnist",
        split=split,
        filetype_suffix="array_record",
    )
    path = os.fspath(template.sharded_filepath(shard_index=0, num_shards=1))
    writer = ArrayRecordWriter(path, "group_size:1")
    for image, label in zip(images, labels):
      png = io.BytesIO()
      PIL.Image.fromarray(image[..., 0]).save(png, format="PNG")
      example = tf_example_pb2.Example()
      example.features.feature["image"].bytes_list.value.append(png.getvalue())
      example.features.feature["label"].int64_list.value.append(int(label))
      writer.write(example.SerializeToString())
    writer.close()
    infos.append(
        splits.SplitInfo(
            name=split,
            shard_lengths=[size],
            num_bytes=os.path.getsize(path),
            filename_template=template,
        )
    )
    written[split] = (images, labels)
  builder.info.set_splits(splits.SplitDict(infos))
  builder.info.write_to_directory(builder.data_path)
  return written


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
