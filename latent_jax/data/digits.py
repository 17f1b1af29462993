"""scikit-learn's 8x8 handwritten digits: a small image set that needs no download.

1,797 images with integer values 0..16, shipped inside scikit-learn, so it
works offline and makes a quick stand-in for MNIST in smoke experiments.
"""

from __future__ import annotations

import numpy as np

from latent_jax.data.dataset import Dataset, make_dataset

# Pixel values in load_digits() are counts of "on" cells in 4x4 blocks: 0..16.
_MAX_PIXEL = 16.0


def load_digits(
    *,
    seed: int,
    test_fraction: float = 0.2,
    cache_dir: str | None = None,
    split: str = "random",
) -> Dataset:
  """``digits``: images ``[N, 8, 8, 1]`` in ``[0, 1]``, labels ``[N, 1]`` digit ids.

  Args:
      seed: Seed of the random train/test split.
      test_fraction: Fraction of examples in the test split.
      cache_dir: Unused (the data ships with scikit-learn); accepted so that
          every registry loader has the same call signature.
      split: ``"random"`` or ``"seed002"`` (scikit-learn's split with
          ``random_state=19``).

  Returns:
      The split dataset with ``label_names=("digit",)``, categorical.
  """
  del cache_dir
  # Imported here so that importing latent_jax.data stays cheap.
  from sklearn.datasets import load_digits as sklearn_load_digits

  bunch = sklearn_load_digits()
  images = np.asarray(bunch.images, np.float64) / _MAX_PIXEL
  return make_dataset(
      "digits",
      images,
      np.asarray(bunch.target),
      ("digit",),
      (True,),
      seed=seed,
      test_fraction=test_fraction,
      split=split,
  )
