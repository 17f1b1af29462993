"""Embedding metrics against scikit-learn; the subsampled kNN accuracy; the
held-out kNN accuracy against a classifier fit and scored by hand."""

import pytest
from sklearn import manifold, metrics
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

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


def test_heldout_knn_accuracy_is_scikit_learns_train_then_score(digits):
  data, labels = digits
  embedding = PCA(2).fit_transform(data)
  for k in (1, 5):
    reference = KNeighborsClassifier(k).fit(embedding[:1000], labels[:1000])
    assert embedding_metrics.heldout_knn_accuracy(
        embedding[:1000], labels[:1000], embedding[1000:], labels[1000:],
        n_neighbors=k) == reference.score(embedding[1000:], labels[1000:])
  with pytest.raises(ValueError, match="n_neighbors=5 needs at least"):
    embedding_metrics.heldout_knn_accuracy(embedding[:3], labels[:3],
                                           embedding, labels)
