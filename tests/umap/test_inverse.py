"""Inverse transforms: the decoder beats the mean image; interpolation
recovers a smooth map and warns outside the hull."""

import warnings

import numpy as np
import pytest

from latent_jax.umap import inverse


def test_decoder_inverse_beats_mean_image(fitted_umap, digits_split):
  _, _, test, _ = digits_split
  decoded = fitted_umap.inverse_transform(fitted_umap.transform(test))
  assert decoded.shape == test.shape
  mse = np.mean((decoded - test) ** 2)
  mean_image_mse = np.mean((test - test.mean(axis=0)) ** 2)
  assert mse < 0.8 * mean_image_mse


def test_interpolation_recovers_a_smooth_map():
  # Data = the embedding itself (an identity map): an interpolated inverse
  # of points inside the hull must land near them.
  rng = np.random.default_rng(0)
  embedding = rng.uniform(0, 10, (2000, 2)).astype(np.float32)
  points = rng.uniform(2, 8, (50, 2)).astype(np.float32)
  estimate = inverse.interpolate(embedding, embedding, points, a=1.58,
                                 b=0.9, n_neighbors=10)
  assert np.abs(estimate - points).max() < 0.5
  # A convex combination never leaves the data's range.
  data = rng.normal(size=(2000, 3)).astype(np.float32)
  values = inverse.interpolate(embedding, data, points, a=1.58, b=0.9)
  assert np.all(values >= data.min(0) - 1e-5)
  assert np.all(values <= data.max(0) + 1e-5)


def test_interpolate_method_and_hull_warning(fitted_umap):
  inside = fitted_umap.embedding_[:3]
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # no warning inside the hull
    values = fitted_umap.inverse_transform(inside, method="interpolate")
  assert values.shape == (3, 64)
  far = fitted_umap.embedding_.max(axis=0) + 100.0
  with pytest.warns(UserWarning, match="outside the convex hull"):
    fitted_umap.inverse_transform(far[None], method="interpolate")
