"""Fixtures of the evaluation tests: latent codes with labels, a fake decoder
that records its calls, and the check every drawn figure passes."""

import matplotlib

matplotlib.use("Agg")  # the tests draw headless, as the entry points do
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from latent_jax.evaluation.exploration import LatentContext  # noqa: E402


def _latent_context(categorical, dim=3, n=600):
  rng = np.random.default_rng(0)
  if categorical:
    first = rng.integers(0, 4, n).astype(np.float64)
    labels = np.stack([first, rng.random(n)], axis=1)
    names, flags = ("digit", "width"), (True, False)
  else:
    first = rng.random(n) * 4
    labels = np.stack([first, rng.random(n)], axis=1)
    names, flags = ("var_x", "corr"), (False, False)
  codes = rng.normal(size=(n, dim)) * 0.3
  codes[:, 0] += first
  return LatentContext(codes.astype(np.float32), labels, names, flags,
                       np.zeros(dim, np.float32), np.ones(dim, np.float32))


@pytest.fixture(scope="session")
def latent_context():
  """`latent_context(categorical, dim=3, n=600)`: a LatentContext whose codes'
  first dim is the label in the first column, a class id in 0..3 ("digit",
  with a continuous "width") or a continuous value in [0, 4) ("var_x", with
  "corr"); a standard-normal prior."""
  return _latent_context


class RecordingDecoder:
  """[M, D] codes -> [M, size, size, 1] float32 images in [0, 1]: the
  brightness of image m rises with its first coordinate, and a ramp down the
  rows keeps every image non-blank. `calls` holds each call's codes."""

  def __init__(self, size):
    self.size = size
    self.calls = []

  def __call__(self, codes):
    self.calls.append(np.array(codes))
    level = 1 / (1 + np.exp(-np.asarray(codes)[:, :1]))
    ramp = np.linspace(0.2, 1.0, self.size)[None, :, None, None]
    return (level[:, :, None, None] * ramp
            * np.ones((1, 1, self.size, 1))).astype(np.float32)


@pytest.fixture
def fake_decoder():
  """`fake_decoder(size=6)`: a fresh RecordingDecoder."""
  return lambda size=6: RecordingDecoder(size)


@pytest.fixture(scope="session")
def check_figure():
  """`check_figure(figure, path, min_side=100)`: asserts the function
  returned an open matplotlib Figure (the caller owns it) that it also wrote
  to `path` as a readable PNG, between min_side and 5,000 pixels a side and
  not blank; closes it and asserts no other figure was left open; returns
  the image."""

  def check(figure, path, min_side=100):
    assert isinstance(figure, Figure), f"expected a Figure, got {figure!r}"
    assert plt.fignum_exists(figure.number), "the returned figure was closed"
    plt.close(figure)
    assert len(plt.get_fignums()) == 0, "another figure was left open"
    image = mpimg.imread(str(path))
    assert (image.ndim == 3 and min(image.shape[:2]) >= min_side
            and max(image.shape[:2]) < 5000)
    assert image[..., :3].std() > 0.02, "figure looks blank"
    return image

  return check
