"""The scikit-learn digits as a dataset."""

from __future__ import annotations

import numpy as np

from latent_jax import data


def test_digits():
  ds = data.load_dataset("digits", seed=0)
  assert ds.image_shape == (8, 8, 1) and ds.num_train + ds.num_test == 1797
  for images, labels in (
      (ds.train_images, ds.train_labels),
      (ds.test_images, ds.test_labels),
  ):
    assert (
        images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
    )
    assert set(np.unique(labels)) == set(range(10))
  assert ds.train_images.max() == 1.0 and ds.categorical == (True,)
