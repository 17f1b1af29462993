"""synthetic_clusters: shapes, determinism, the noise it is asked for,
classes a k-NN classifier separates, and bad arguments refused."""

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from latent_jax.data.clusters import synthetic_clusters


def test_clusters_are_labelled_noisy_points_on_a_sheet():
  points, labels = synthetic_clusters(600, seed=3, dims=50, num_clusters=4)
  assert points.shape == (600, 50) and points.dtype == np.float32
  assert labels.shape == (600,) and set(labels) == {0, 1, 2, 3}
  again = synthetic_clusters(600, seed=3, dims=50, num_clusters=4)
  np.testing.assert_array_equal(points, again.points)
  assert not np.array_equal(points, synthetic_clusters(
      600, seed=4, dims=50, num_clusters=4).points)
  # The noise is drawn last: without it the same sheet, inside (0, 1).
  clean, clean_labels = synthetic_clusters(600, seed=3, dims=50,
                                           num_clusters=4, noise=0.0)
  np.testing.assert_array_equal(labels, clean_labels)
  assert 0.0 < clean.min() and clean.max() < 1.0
  assert np.std(points - clean) == pytest.approx(0.1, rel=0.05)
  # The sheet is manifold_dims-D: centred, its top singular values hold
  # (nearly) all of its variance although it lies in 50 dimensions.
  singular = np.linalg.svd(clean - clean.mean(0), compute_uv=False)
  assert np.sum(singular[:8] ** 2) / np.sum(singular ** 2) > 0.95
  classifier = KNeighborsClassifier(5).fit(points[:500], labels[:500])
  assert classifier.score(points[500:], labels[500:]) > 0.6  # chance: 0.25


@pytest.mark.parametrize("argument, value", [
    ("num", 0), ("dims", 2.5), ("num_clusters", True),
    ("separation", -1.0), ("noise", -0.1)])
def test_bad_arguments_name_themselves(argument, value):
  kwargs = {"num": 10, "seed": 0, argument: value}
  with pytest.raises(ValueError, match=argument):
    synthetic_clusters(**kwargs)
