"""Tests for latent_jax.data: numbers are checked against independent references."""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
from scipy import stats

from latent_jax import data
from latent_jax.data import heatmaps, tfds_datasets
from latent_jax.data.dataset import make_dataset, train_test_split_indices, validate_arrays

NUM_HEATMAPS = 25 * 25 * 19


def seed_combinations() -> np.ndarray:
  """Seed 002's parameter table, written out independently of the package."""
  var_grid = np.arange(0.1, 5, 0.2)
  cor_grid = np.arange(-0.95, 0.95, 0.1)
  return np.array(np.meshgrid(var_grid, var_grid, cor_grid)).T.reshape(-1, 3)


def seed_positions() -> np.ndarray:
  x, y = np.mgrid[-3:3:0.17, -3:3:0.17]
  return np.dstack((x, y))


def covariance(var_x: float, var_y: float, corr: float) -> np.ndarray:
  cov_xy = corr * np.sqrt(var_x) * np.sqrt(var_y)
  return np.array([[var_x, cov_xy], [cov_xy, var_y]])


def pick_rows(combos: np.ndarray) -> list[int]:
  """First, last, and rows with corr -0.95 / 0.85 and var 0.1 vs 4.9."""

  def find(var_x: float, var_y: float, corr: float) -> int:
    hits = np.flatnonzero(
        np.all(np.isclose(combos, [var_x, var_y, corr]), axis=1)
    )
    assert hits.size == 1
    return int(hits[0])

  return [
      0,
      len(combos) - 1,
      4321,
      find(0.1, 4.9, -0.95),
      find(4.9, 0.1, 0.85),
      find(0.1, 0.1, 0.85),
      find(2.5, 1.3, -0.05),
  ]


@pytest.fixture(scope="module")
def gaussian_arrays(tmp_path_factory):
  return heatmaps.load_heatmap_arrays(
      "gaussian", cache_dir=tmp_path_factory.mktemp("cache")
  )


@pytest.fixture(scope="module")
def student_arrays(tmp_path_factory):
  return heatmaps.load_heatmap_arrays(
      "student_t", df_seed=3, cache_dir=tmp_path_factory.mktemp("cache")
  )


# --------------------------------------------------------------- heatmaps
def test_gaussian_heatmaps_match_scipy(gaussian_arrays):
  images, labels = gaussian_arrays
  combos = seed_combinations()
  assert (
      images.shape == (NUM_HEATMAPS, 36, 36, 1) and images.dtype == np.float32
  )
  np.testing.assert_array_equal(labels, combos)
  pos = seed_positions()
  for row in pick_rows(combos):
    density = stats.multivariate_normal(
        mean=[0, 0], cov=covariance(*combos[row])
    ).pdf(pos)
    np.testing.assert_allclose(
        images[row, ..., 0], density / density.max(), rtol=0, atol=1e-5
    )


def test_gaussian_log_density_matches_scipy():
  pos = seed_positions()
  params = np.array([[0.1, 4.9, -0.95], [1.3, 2.7, 0.45]])
  log_p = heatmaps.gaussian_log_density(pos, params)
  for i, row in enumerate(params):
    expected = stats.multivariate_normal(
        mean=[0, 0], cov=covariance(*row)
    ).logpdf(pos)
    np.testing.assert_allclose(log_p[i], expected, rtol=1e-10)


def test_student_t_heatmaps_match_scipy(student_arrays):
  images, labels = student_arrays
  assert images.shape == (NUM_HEATMAPS, 36, 36, 1) and labels.shape == (
      NUM_HEATMAPS,
      4,
  )
  np.testing.assert_array_equal(labels[:, :3], seed_combinations())
  df = labels[:, 3]
  assert set(np.unique(df)) == {2.0, 200.0}
  assert 0.4 < np.mean(df == 2) < 0.6
  # The seed rule: df = 2 is impossible when (vx + vy)^2 <= 20 and certain when > 30.
  total = (labels[:, 0] + labels[:, 1]) ** 2
  assert np.all(df[total <= 20] == 200) and np.all(df[total > 30] == 2)
  pos = seed_positions()
  rows = [
      *np.flatnonzero(df == 2)[[0, 500, -1]],
      *np.flatnonzero(df == 200)[[0, 700, -1]],
  ]
  for row in rows:
    var_x, var_y, corr, nu = labels[row]
    density = stats.multivariate_t(
        loc=[0, 0], shape=covariance(var_x, var_y, corr), df=nu
    ).pdf(pos)
    np.testing.assert_allclose(
        images[row, ..., 0], density / density.max(), rtol=0, atol=1e-5
    )


def test_student_t_log_density_matches_scipy():
  pos = seed_positions()
  params = np.array([[0.1, 4.9, -0.95], [3.3, 0.5, 0.85]])
  df = np.array([2.0, 200.0])
  log_p = heatmaps.student_t_log_density(pos, params, df)
  for i, row in enumerate(params):
    expected = stats.multivariate_t(
        loc=[0, 0], shape=covariance(*row), df=df[i]
    ).logpdf(pos)
    np.testing.assert_allclose(log_p[i], expected, rtol=1e-10)


def test_df_rule_depends_on_seed_only():
  combos = seed_combinations()
  a = heatmaps.sample_degrees_of_freedom(combos, 0)
  np.testing.assert_array_equal(
      a, heatmaps.sample_degrees_of_freedom(combos, 0)
  )
  assert np.any(a != heatmaps.sample_degrees_of_freedom(combos, 1))


# ------------------------------------------------------------------ cache
def test_cache_is_read_on_second_load(tmp_path, monkeypatch):
  first = heatmaps.load_heatmap_arrays("gaussian", cache_dir=tmp_path)
  files = list(tmp_path.glob("heatmaps_*.npz"))
  assert [f.name for f in files] == [
      f"heatmaps_{heatmaps.cache_key('gaussian')}.npz"
  ]

  def fail(*args, **kwargs):
    raise AssertionError("generator called although the cache exists")

  monkeypatch.setattr(heatmaps, "generate_heatmaps", fail)
  second = heatmaps.load_heatmap_arrays("gaussian", cache_dir=tmp_path)
  np.testing.assert_array_equal(first[0], second[0])
  np.testing.assert_array_equal(first[1], second[1])
  assert not list(tmp_path.glob("*.tmp"))  # atomic write left no temp file


def test_cache_key_covers_generating_parameters():
  keys = {
      heatmaps.cache_key("gaussian"),
      heatmaps.cache_key("student_t", df_seed=0),
      heatmaps.cache_key("student_t", df_seed=1),
  }
  assert len(keys) == 3
  assert heatmaps.cache_key("student_t", 5) == heatmaps.cache_key(
      "student_t", 5
  )
  # The df seed does not change Gaussian images, so it must not split the cache.
  assert heatmaps.cache_key("gaussian", 0) == heatmaps.cache_key("gaussian", 9)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_cache_is_regenerated(tmp_path, damage):
  path = tmp_path / f"heatmaps_{heatmaps.cache_key('gaussian')}.npz"
  if damage == "garbage":
    path.write_bytes(b"not an npz file")
  else:
    heatmaps.load_heatmap_arrays("gaussian", cache_dir=tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  images, labels = heatmaps.load_heatmap_arrays("gaussian", cache_dir=tmp_path)
  assert images.shape == (NUM_HEATMAPS, 36, 36, 1)
  with np.load(path) as archive:  # overwritten with a valid file
    np.testing.assert_array_equal(archive["images"], images)


def test_default_cache_dir_from_env(monkeypatch, tmp_path):
  monkeypatch.setenv("LATENT_JAX_CACHE", str(tmp_path))
  assert heatmaps.default_cache_dir() == tmp_path


# ---------------------------------------------------------- split, dataset
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


def test_load_heatmaps_dataset(tmp_path):
  ds = data.load_dataset("heatmaps", seed=3, cache_dir=str(tmp_path))
  assert (ds.num_train, ds.num_test, ds.image_shape) == (
      9500,
      2375,
      (36, 36, 1),
  )
  assert (
      ds.label_names == ("var_x", "var_y", "corr")
      and ds.likelihood == "bernoulli"
  )
  train_idx, test_idx = train_test_split_indices(NUM_HEATMAPS, 0.2, seed=3)
  combos = seed_combinations().astype(np.float32)
  np.testing.assert_array_equal(ds.train_labels, combos[train_idx])
  np.testing.assert_array_equal(ds.test_labels, combos[test_idx])
  ds_t = data.load_dataset(
      "heatmaps_t", seed=3, cache_dir=str(tmp_path), df_seed=3
  )
  assert ds_t.categorical == (
      False,
      False,
      False,
      True,
  ) and ds_t.train_labels.shape == (9500, 4)


def test_digits():
  ds = data.load_dataset("digits", seed=0)
  assert ds.image_shape == (8, 8, 1) and ds.num_train + ds.num_test == 1797
  for images, labels in (
      (ds.train_images, ds.train_labels),
      (ds.test_images, ds.test_labels),
  ):
    assert (
        images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
    )
    assert set(np.unique(labels)) == set(range(10))
  assert ds.train_images.max() == 1.0 and ds.categorical == (True,)


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


# ------------------------------------------------------------------- tfds
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


def test_seed002_split_is_the_notebooks_sklearn_split():
  from sklearn.model_selection import train_test_split

  train, test = train_test_split_indices(11875, 0.2, seed=5, split="seed002")
  expected_train, expected_test = train_test_split(
      np.arange(11875), test_size=0.2, random_state=19
  )
  np.testing.assert_array_equal(train, np.sort(expected_train))
  np.testing.assert_array_equal(test, np.sort(expected_test))
  with pytest.raises(ValueError, match="split"):
    train_test_split_indices(100, 0.2, seed=0, split="stratified")
