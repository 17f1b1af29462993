"""Quality of a low-dimensional embedding: the numbers UMAP papers report.

- `trustworthiness` (k = 10): are the embedding's nearest neighbours also
  near in the data? 1 is perfect (Venna & Kaski; scikit-learn's formula).
- `knn_accuracy`: 5-NN classifier accuracy on the embedding, 5-fold
  cross-validated (how well classes stay separated).
- `heldout_knn_accuracy`: a k-NN classifier fit on the training embedding,
  scored on held-out points' embedding (the Parametric UMAP paper's
  protocol: do new points land among their own class?).
- `silhouette`: mean silhouette of the labels in the embedding.

All but `heldout_knn_accuracy` are O(N^2) in time; above `max_points`
they are computed on a fixed random subset (`seed`), the same subset for
every embedding of the same data.
"""

from __future__ import annotations

import numpy as np

DEFAULT_MAX_POINTS = 10_000


def _subset(num: int, max_points: int, seed: int) -> np.ndarray:
  if num <= max_points:
    return np.arange(num)
  return np.sort(np.random.default_rng(seed).choice(num, max_points,
                                                    replace=False))


def trustworthiness(data: np.ndarray, embedding: np.ndarray, *,
                    n_neighbors: int = 10, max_points: int =
                    DEFAULT_MAX_POINTS, seed: int = 0) -> float:
  """Trustworthiness of `embedding` [N, d] for `data` [N, ...] (in [0, 1])."""
  from sklearn import manifold  # pylint: disable=g-import-not-at-top
  index = _subset(len(data), max_points, seed)
  flat = np.asarray(data, np.float32).reshape(len(data), -1)[index]
  return float(manifold.trustworthiness(flat, np.asarray(embedding)[index],
                                        n_neighbors=n_neighbors))


def knn_accuracy(embedding: np.ndarray, labels: np.ndarray, *,
                 n_neighbors: int = 5, folds: int = 5,
                 max_points: int = DEFAULT_MAX_POINTS, seed: int = 0
                 ) -> float:
  """Mean accuracy of a k-NN classifier over stratified cross-validation."""
  from sklearn import model_selection, neighbors  # pylint: disable=g-import-not-at-top
  index = _subset(len(embedding), max_points, seed)
  labels = np.asarray(labels).reshape(-1)[index]
  scores = model_selection.cross_val_score(
      neighbors.KNeighborsClassifier(n_neighbors),
      np.asarray(embedding)[index], labels,
      cv=model_selection.StratifiedKFold(folds, shuffle=True,
                                         random_state=seed))
  return float(np.mean(scores))


def heldout_knn_accuracy(train_embedding: np.ndarray,
                         train_labels: np.ndarray, embedding: np.ndarray,
                         labels: np.ndarray, *, n_neighbors: int = 5
                         ) -> float:
  """Accuracy on `embedding` [M, d] (labels [M]) of a k-NN classifier fit
  on `train_embedding` [N, d] (labels [N]); every point is used."""
  from sklearn import neighbors  # pylint: disable=g-import-not-at-top
  if len(train_embedding) < n_neighbors:
    raise ValueError(f"heldout_knn_accuracy: n_neighbors={n_neighbors} needs "
                     f"at least that many training points, got "
                     f"{len(train_embedding)}")
  classifier = neighbors.KNeighborsClassifier(n_neighbors).fit(
      np.asarray(train_embedding), np.asarray(train_labels).reshape(-1))
  return float(classifier.score(np.asarray(embedding),
                                np.asarray(labels).reshape(-1)))


def silhouette(embedding: np.ndarray, labels: np.ndarray, *,
               max_points: int = DEFAULT_MAX_POINTS, seed: int = 0) -> float:
  """Mean silhouette coefficient of the label clusters in the embedding."""
  from sklearn import metrics  # pylint: disable=g-import-not-at-top
  index = _subset(len(embedding), max_points, seed)
  return float(metrics.silhouette_score(
      np.asarray(embedding)[index], np.asarray(labels).reshape(-1)[index]))


def embedding_quality(data: np.ndarray, embedding: np.ndarray,
                      labels: np.ndarray | None = None, *,
                      max_points: int = DEFAULT_MAX_POINTS, seed: int = 0
                      ) -> dict[str, float]:
  """{"trustworthiness", and with labels "knn_accuracy", "silhouette"}."""
  result = {"trustworthiness": trustworthiness(
      data, embedding, max_points=max_points, seed=seed)}
  if labels is not None and len(np.unique(labels)) > 1:
    result["knn_accuracy"] = knn_accuracy(embedding, labels,
                                          max_points=max_points, seed=seed)
    result["silhouette"] = silhouette(embedding, labels,
                                      max_points=max_points, seed=seed)
  return result
