"""Heatmap datasets: images and log densities against SciPy, the df rule,
the cache, and the loaded dataset; numbers are checked against independent
references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from latent_jax import data
from latent_jax.data import heatmaps
from latent_jax.data.dataset import train_test_split_indices

NUM_HEATMAPS = 25 * 25 * 19


def seed_combinations() -> np.ndarray:
  """The Keras VAE-vs-AE heatmap notebook's parameter table, written out
  independently of the package."""
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
def gaussian_arrays(heatmap_cache):
  return heatmaps.load_heatmap_arrays("gaussian", cache_dir=heatmap_cache)


@pytest.fixture(scope="module")
def student_arrays(heatmap_cache):
  return heatmaps.load_heatmap_arrays(
      "student_t", df_seed=3, cache_dir=heatmap_cache
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


# ---------------------------------------------------------------- dataset
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
