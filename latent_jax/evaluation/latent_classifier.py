"""How well latent codes separate a class label: a kNN classifier.

As the Keras VAE-vs-AE heatmap notebook does for its Student-t heatmaps
(df 2 vs 200): k is chosen by 5-fold cross-validation on the training codes,
then the classifier is scored on the test codes (accuracy and macro-averaged
F1).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

CANDIDATE_K = (1, 3, 5, 7, 9, 15, 21, 31)
MAX_TRAIN_CODES = 10_000  # cross-validation cost grows with N^2 / fold


def latent_knn_scores(train_codes: np.ndarray, train_labels: np.ndarray,
                      test_codes: np.ndarray, test_labels: np.ndarray,
                      seed: int = 0, candidate_k: Sequence[int] = CANDIDATE_K
                      ) -> dict[str, float]:
  """{latent_knn_accuracy, latent_knn_f1, latent_knn_k} on the test codes.

  Args:
    train_codes: [N, D]; train_labels: [N] class ids.
    test_codes: [M, D]; test_labels: [M] class ids.
  """
  from sklearn.metrics import f1_score
  from sklearn.model_selection import GridSearchCV, StratifiedKFold
  from sklearn.neighbors import KNeighborsClassifier

  train_labels = np.asarray(train_labels).astype(int)
  if len(train_codes) > MAX_TRAIN_CODES:
    keep = np.random.default_rng(seed).choice(len(train_codes),
                                              MAX_TRAIN_CODES, replace=False)
    train_codes, train_labels = train_codes[keep], train_labels[keep]
  counts = np.bincount(train_labels)
  folds = int(min(5, counts[counts > 0].min()))
  # Each fit sees (folds - 1) / folds of the codes: k must not exceed that.
  fit_size = len(train_codes) * (folds - 1) // max(folds, 1)
  candidates = [k for k in candidate_k if k <= fit_size] or [1]
  if folds >= 2:
    search = GridSearchCV(
        KNeighborsClassifier(), {"n_neighbors": candidates},
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    search.fit(train_codes, train_labels)
    best_k = int(search.best_params_["n_neighbors"])
  else:  # a class with a single example: no cross-validation possible
    best_k = 1
  classifier = KNeighborsClassifier(n_neighbors=best_k).fit(train_codes,
                                                            train_labels)
  predicted = classifier.predict(test_codes)
  test_labels = np.asarray(test_labels).astype(int)
  return {
      "latent_knn_accuracy": float(np.mean(predicted == test_labels)),
      "latent_knn_f1": float(f1_score(test_labels, predicted,
                                      average="macro")),
      "latent_knn_k": float(best_k),
  }
