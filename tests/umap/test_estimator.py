"""ParametricUMAP end to end: the fit beats PCA and maps held-out data, input
noise, a convolutional encoder, the default learning rate; and as a
scikit-learn estimator: its checks, pipelines, grid searches, pickling,
dtypes, feature names and set_output, the progress lines and timings of a
fit."""

import copy
import pickle
import threading

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks, get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from latent_jax import ParametricUMAP
from latent_jax.evaluation import embedding_metrics
from latent_jax.umap import graph as graph_lib
from latent_jax.umap import plan
from latent_jax.umap.projection import fit_projection
from tests.umap.conftest import TINY


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


def test_input_noise_improves_held_out_trustworthiness(digits_split,
                                                       fast_umap):
  # Input noise alone (neighbour mixing off in both fits, as it also
  # smooths the map): new points are mapped more faithfully. Seeds 0-4 with
  # these settings gained +0.005 to +0.013 (mean +0.010): the mean of three
  # seeds is judged, as one seed's gain varies with float rounding.
  train, _, test, _ = digits_split
  held_out = lambda seed, **kw: embedding_metrics.trustworthiness(
      test, ParametricUMAP(**{**fast_umap, "random_state": seed},
                           neighbor_mixing=0.0, **kw)
      .fit(train).transform(test))
  gains = [held_out(seed) - held_out(seed, input_noise=0.0)
           for seed in (0, 1, 2)]
  assert np.mean(gains) > 0.005, gains


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


# --- the scikit-learn protocol ---------------------------------------------


@parametrize_with_checks([ParametricUMAP(**TINY)])
def test_scikit_learn_estimator_checks(estimator, check):
  check(estimator)


# Checks of the output and feature-name protocol that
# parametrize_with_checks leaves out; those with pandas skip without it.
@pytest.mark.parametrize("check", [
    estimator_checks.check_transformer_get_feature_names_out,
    estimator_checks.check_set_output_transform,
    estimator_checks.check_transformer_get_feature_names_out_pandas,
    estimator_checks.check_set_output_transform_pandas,
    estimator_checks.check_global_output_transform_pandas,
    estimator_checks.check_dataframe_column_names_consistency,
], ids=lambda check: check.__name__)
def test_scikit_learn_output_checks(check):
  check("ParametricUMAP", ParametricUMAP(**TINY))


def test_pipeline_and_grid_search():
  # Shapes of the estimator checks' data (30 x 3 folds), whose compiled
  # programs the searches reuse.
  data, labels = make_blobs(60, n_features=3, centers=3, random_state=0)
  pipe = Pipeline([("scale", StandardScaler()),
                   ("umap", ParametricUMAP(**TINY))])
  embedding = pipe.fit(data).transform(data)
  assert embedding.shape == (60, 2) and embedding.dtype == np.float64
  np.testing.assert_array_equal(embedding, pipe.fit_transform(data))
  pipe.set_params(umap__random_state=1)
  assert pipe.named_steps["umap"].random_state == 1
  assert not np.array_equal(pipe.fit(data).transform(data), embedding)
  # Over a downstream classifier's accuracy, and with a scorer of its own.
  search = GridSearchCV(
      Pipeline([("umap", ParametricUMAP(**TINY)),
                ("knn", KNeighborsClassifier(3))]),
      {"umap__n_neighbors": [4, 5]}, cv=2).fit(data, labels)
  assert search.best_params_["umap__n_neighbors"] in (4, 5)
  assert search.best_score_ > 0.9  # three well-separated blobs
  trust = lambda est, X, y=None: embedding_metrics.trustworthiness(
      X, est.transform(X), n_neighbors=3)
  scored = GridSearchCV(ParametricUMAP(**TINY), {"random_state": [0, 1]},
                        scoring=trust, cv=2).fit(data)
  assert 0.5 < scored.best_score_ <= 1.0


def test_fitted_model_pickles_copies_and_clones(fitted_umap, digits_split,
                                                tmp_path):
  test = digits_split[2][:20]
  points = fitted_umap.embedding_[:5]
  joblib.dump(fitted_umap, tmp_path / "reducer.joblib")
  copies = [pickle.loads(pickle.dumps(fitted_umap)),
            joblib.load(tmp_path / "reducer.joblib"),
            copy.deepcopy(fitted_umap)]
  for copied in copies:
    np.testing.assert_array_equal(copied.transform(test),
                                  fitted_umap.transform(test))
    np.testing.assert_array_equal(copied.inverse_transform(points),
                                  fitted_umap.inverse_transform(points))
  # No compile thread or fit object is left on the estimator.
  assert not any(isinstance(value, threading.Thread)
                 for value in vars(fitted_umap).values())
  assert clone(fitted_umap).get_params() == fitted_umap.get_params()
  with pytest.raises(NotFittedError):
    check_is_fitted(clone(fitted_umap))


def test_results_keep_the_input_float_dtype(fitted_umap, digits_split):
  test = digits_split[2][:10]
  for dtype in (np.float32, np.float64):
    embedded = fitted_umap.transform(test.astype(dtype))
    assert embedded.dtype == dtype
    assert fitted_umap.inverse_transform(embedded).dtype == dtype
  assert fitted_umap.transform(test.astype(np.int64)).dtype == np.float64
  np.testing.assert_array_equal(
      fitted_umap.transform(test.astype(np.float64)),
      fitted_umap.transform(test).astype(np.float64))


@pytest.mark.parametrize("bad, message", [
    (lambda x: x + 1j, "Complex data not supported"),
    (lambda x: np.where(np.ones_like(x, bool), "a", x), "numeric"),
    (lambda x: np.full(x.shape, {"a": 1}, object), "numeric"),
])
def test_complex_and_object_inputs_are_rejected(fitted_umap, bad, message):
  inputs = bad(np.zeros((20, 64)))
  for call in (ParametricUMAP(**TINY).fit, fitted_umap.transform):
    with pytest.raises(ValueError, match=message):
      call(inputs)
  with pytest.raises(ValueError, match=message):
    fitted_umap.inverse_transform(bad(np.zeros((3, 2))))
  # Numbers held as objects are numbers.
  objects = np.zeros((3, 64)).astype(object)
  assert fitted_umap.transform(objects).dtype == np.float64


def test_feature_names_tags_and_unfitted_use(fitted_umap, digits_split):
  names = fitted_umap.get_feature_names_out()
  assert list(names) == ["parametricumap0", "parametricumap1"]
  assert fitted_umap.n_features_in_ == 64
  check_is_fitted(fitted_umap)
  tags = get_tags(fitted_umap)
  assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
  assert not tags.input_tags.sparse and not tags.input_tags.allow_nan
  unfitted = ParametricUMAP()
  for call in (lambda: unfitted.transform(np.zeros((3, 64))),
               lambda: unfitted.inverse_transform(np.zeros((3, 2))),
               unfitted.get_feature_names_out,
               lambda: unfitted.save("/nonexistent")):
    with pytest.raises(NotFittedError, match="not fitted"):
      call()
  with pytest.raises(ValueError, match="expecting 64 features"):
    fitted_umap.transform(digits_split[2][:3, :10])


def test_timings_add_up_to_the_fit_and_phases_log_an_eta(timed_fit):
  timings = timed_fit.reducer.timings_
  for stage in ("setup", "knn", "graph", "spectral", "compile", "layout",
                "init", "umap", "finish"):
    assert timings[stage] >= 0, stage
  total = sum(timings.values())
  assert abs(total - timed_fit.wall_seconds) <= 0.03 * timed_fit.wall_seconds
  for phase in ("init", "umap"):
    lines = [line for line in timed_fit.log_lines
             if line.startswith(f"[ParametricUMAP] {phase} phase: step")]
    assert lines and all("ETA" in line for line in lines), phase
    assert lines[-1].endswith("ETA 0.0 s")  # the phase's last chunk
