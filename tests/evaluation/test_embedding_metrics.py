"""Embedding metrics against scikit-learn; the subsampled kNN accuracy."""

import pytest
from sklearn import manifold, metrics
from sklearn.decomposition import PCA

from latent_jax.evaluation import embedding_metrics


def test_embedding_metrics_match_scikit_learn_and_subsample(digits):
  data, labels = digits
  embedding = PCA(2).fit_transform(data)
  assert embedding_metrics.trustworthiness(data, embedding) == pytest.approx(
      manifold.trustworthiness(data, embedding, n_neighbors=10))
  assert embedding_metrics.silhouette(embedding, labels) == pytest.approx(
      metrics.silhouette_score(embedding, labels))
  sub = embedding_metrics.knn_accuracy(embedding, labels, max_points=500)
  assert 0.3 < sub < 0.8  # PCA of digits: well above chance, far from 1
