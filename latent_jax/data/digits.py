"""scikit-learn's 8x8 handwritten digits: a small image set that needs no download.

1,797 images with integer values 0..16, shipped inside scikit-learn, so it
works offline and makes a quick stand-in for MNIST in smoke experiments.
"""

from __future__ import annotations

from typing import NamedTuple

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
      split: ``"random"`` or ``"keras_notebook"`` (scikit-learn's split
          with ``random_state=19``, as the Keras VAE-vs-AE heatmap notebook).

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


class DigitImages(NamedTuple):
  """Upsampled, augmented copies of scikit-learn's digits."""

  images: np.ndarray  # [num, size, size] float32 in [0, 1]
  labels: np.ndarray  # [num] int digit ids


def mnist_like_digits(num: int, *, seed: int, size: int = 28) -> DigitImages:
  """(images [num, size, size] in [0, 1], digit labels [num]).

  scikit-learn's real handwritten digits, smoothly upsampled to MNIST's
  28 x 28 with a 20 x 20 digit box (as MNIST centres its digits), and
  augmented with a random rotation (+-12 degrees), scale (+-15%) and
  shift (+-2 pixels) per copy, so `num` can exceed the 1,797 originals. A
  stand-in for MNIST where it cannot be downloaded: same shape, value range
  and sparsity, real strokes; not a substitute for MNIST's numbers.
  """
  import scipy.ndimage  # pylint: disable=g-import-not-at-top
  from sklearn.datasets import load_digits as sklearn_load_digits

  bunch = sklearn_load_digits()
  rng = np.random.default_rng(seed)
  source = rng.integers(0, len(bunch.images), num)
  box = size * 20 // 28
  upsampled = scipy.ndimage.zoom(
      np.asarray(bunch.images, np.float64) / _MAX_PIXEL, (1, box / 8, box / 8),
      order=3)
  canvas = np.zeros((len(upsampled), size, size))
  start = (size - box) // 2
  canvas[:, start:start + box, start:start + box] = np.clip(upsampled, 0, 1)
  angles = np.deg2rad(rng.uniform(-12, 12, num))
  scales = rng.uniform(0.85, 1.15, num)
  shifts = rng.uniform(-2, 2, (num, 2))
  centre = np.array([(size - 1) / 2.0] * 2)
  images = np.empty((num, size, size), np.float32)
  for i in range(num):
    cos, sin = np.cos(angles[i]) / scales[i], np.sin(angles[i]) / scales[i]
    matrix = np.array([[cos, -sin], [sin, cos]])
    offset = centre - matrix @ (centre + shifts[i])
    images[i] = scipy.ndimage.affine_transform(canvas[source[i]], matrix,
                                               offset=offset, order=1)
  return DigitImages(np.clip(images, 0.0, 1.0),
                     np.asarray(bunch.target)[source])
