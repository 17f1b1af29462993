"""The latent kNN classifier against known answers."""

import numpy as np

from latent_jax.evaluation.latent_classifier import latent_knn_scores


def test_latent_knn_separates_clusters_and_not_noise():
  rng = np.random.default_rng(0)
  labels = np.repeat([0, 1, 2], 100)
  codes = rng.normal(size=(300, 2)) * 0.3 + np.eye(3)[labels, :2] * 4
  test_labels = np.repeat([0, 1, 2], 30)
  test_codes = rng.normal(size=(90, 2)) * 0.3 + np.eye(3)[test_labels, :2] * 4
  scores = latent_knn_scores(codes, labels, test_codes, test_labels)
  assert scores["latent_knn_accuracy"] == 1.0
  assert scores["latent_knn_f1"] == 1.0
  shuffled = latent_knn_scores(codes, rng.permutation(labels), test_codes,
                               test_labels)
  assert shuffled["latent_knn_accuracy"] < 0.6
