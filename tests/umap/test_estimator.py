"""ParametricUMAP end to end: the fit beats PCA and maps held-out data, input
noise, a convolutional encoder, the default learning rate."""

import copy
import threading

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from latent_jax import ParametricUMAP
from latent_jax.evaluation import embedding_metrics
from latent_jax.umap import graph as graph_lib
from latent_jax.umap import plan
from latent_jax.umap.projection import fit_projection


def test_fit_beats_pca_and_transforms_held_out_data(fitted_umap, digits_split):
  train, train_labels, test, test_labels = digits_split
  embedding = fitted_umap.embedding_
  assert embedding.shape == (len(train), 2)
  ours = embedding_metrics.trustworthiness(train, embedding)
  pca = embedding_metrics.trustworthiness(
      train, PCA(2).fit_transform(train))
  assert ours > pca + 0.05
  held_out = fitted_umap.transform(test)
  pca_held_out = PCA(2).fit(train).transform(test)
  assert (embedding_metrics.knn_accuracy(held_out, test_labels)
          > embedding_metrics.knn_accuracy(pca_held_out, test_labels) + 0.1)
  assert fitted_umap.graph_.shape == (len(train), len(train))
  assert len(fitted_umap.loss_history_) > 0
  assert np.all(np.isfinite(fitted_umap.loss_history_))


def test_input_noise_improves_held_out_trustworthiness(fitted_umap,
                                                       digits_split,
                                                       fast_umap):
  # `fitted_umap` trains with the default input_noise; the same fit without it
  # maps new points less faithfully (measured over seeds 0-3 with these
  # settings: 0.955-0.957 without, 0.965-0.970 with).
  train, _, test, _ = digits_split
  clean = ParametricUMAP(parametric_reconstruction=True, input_noise=0.0,
                         **fast_umap).fit(train)
  held_out = lambda reducer: embedding_metrics.trustworthiness(
      test, reducer.transform(test))
  assert held_out(fitted_umap) > held_out(clean) + 0.005


def test_input_noise_std_is_a_fraction_of_the_data_std_up_to_a_knn_radius(
    fitted_umap, digits_split):
  train = digits_split[0]
  feature_std = np.sqrt(np.var(train, axis=0).mean())
  radius = NearestNeighbors(n_neighbors=15).fit(train).kneighbors(train)[0]
  per_feature_radius = np.median(radius[:, -1]) / np.sqrt(64)
  # The digits: 0.75 x 0.27 > 1.57 / 8, so the kNN radius binds.
  assert fitted_umap.input_noise_std_ == pytest.approx(
      min(0.75 * feature_std, per_feature_radius), rel=1e-4)
  assert per_feature_radius < 0.75 * feature_std
  # Wide, spread data through a PCA: the feature std binds, and the radius
  # is measured where the encoder looks (PCA space).
  wide = np.random.default_rng(0).normal(size=(300, 40)).astype(np.float32)
  hp = ParametricUMAP(input_noise=0.3, pca_components=10).get_params()
  knn_indices = graph_lib.nearest_neighbors(wide, 15).indices
  projection = fit_projection(wide, 10)
  projected = PCA(10).fit_transform(wide)
  far = knn_indices[:, -1]
  wide_radius = np.median(np.linalg.norm(projected - projected[far],
                                         axis=1)) / np.sqrt(10)
  wide_std = np.sqrt(wide.var(axis=0).mean())
  assert 0.3 * wide_std < wide_radius
  noise_std = lambda **changes: plan.input_noise_std(
      {**hp, **changes}, wide, projection, knn_indices)
  assert noise_std() == pytest.approx(0.3 * wide_std, rel=1e-4)
  assert noise_std(input_noise=5.0) == pytest.approx(wide_radius, rel=1e-4)
  assert noise_std(input_noise=0) == 0


def test_conv_encoder_on_images(digits, fast_umap):
  images = digits[0][:300].reshape(-1, 8, 8)  # [N, H, W]
  reducer = ParametricUMAP(encoder="conv", n_neighbors=10,
                           chunk_mode="dispatch", **dict(fast_umap, n_epochs=2))
  embedding = reducer.fit_transform(images)
  assert embedding.shape == (300, 2) and np.all(np.isfinite(embedding))
  np.testing.assert_allclose(reducer.transform(images[:, :, :, None]),
                             embedding, atol=1e-5)


def test_default_learning_rate_follows_the_encoders_input_width():
  narrow = np.zeros((50, 64), np.float32)       # 64 features: raw, narrow
  wide = np.zeros((50, 784), np.float32)        # PCA to 50 in front
  images = np.zeros((50, 28, 28, 1), np.float32)
  rate = lambda array, **kw: plan.learning_rate(
      ParametricUMAP(**kw).get_params(), array.shape[1:])
  assert rate(narrow) == rate(wide) > rate(wide, pca_components=0)
  assert rate(images, encoder="conv") == rate(wide, pca_components=0)
  assert rate(wide, learning_rate=0.005) == 0.005
  with pytest.raises(ValueError, match="learning_rate must be > 0 or None"):
    ParametricUMAP(learning_rate=0.0).fit(narrow)


def test_fit_keeps_random_state_and_records_the_drawn_seed(digits, fast_umap):
  reducer = ParametricUMAP(**dict(fast_umap, random_state=None, n_epochs=5))
  reducer.fit(digits[0][:200])
  assert reducer.random_state is None  # the constructor's value, untouched
  assert isinstance(reducer.seed_, int)
  assert reducer.get_params()["random_state"] is None


def test_a_fitted_model_copies_without_its_fit_machinery(fitted_umap,
                                                        digits_split):
  # No compile thread or fit object is left on the estimator.
  copied = copy.deepcopy(fitted_umap)
  test = digits_split[2][:20]
  np.testing.assert_array_equal(copied.transform(test),
                                fitted_umap.transform(test))
  assert not any(isinstance(value, threading.Thread)
                 for value in vars(fitted_umap).values())
