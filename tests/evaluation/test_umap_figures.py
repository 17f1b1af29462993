"""Embedding figures: the umap-learn inverse_transform tutorial's corner grid,
default corners, PNGs."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from latent_jax.evaluation import umap_figures


def test_corner_grid_is_the_umap_inverse_transform_tutorials_bilinear_grid():
  corners = np.array([[-5, -10], [-7, 6], [2, -8], [12, 4]], np.float32)
  grid = umap_figures.corner_grid(corners, 10)
  # The tutorial's own list comprehension, row by row (y outer, x inner).
  reference = np.array([
      (corners[0] * (1 - x) + corners[1] * x) * (1 - y)
      + (corners[2] * (1 - x) + corners[3] * x) * y
      for y in np.linspace(0, 1, 10) for x in np.linspace(0, 1, 10)])
  np.testing.assert_allclose(grid, reference, atol=1e-5)


def _segments_cross(p1, p2, q1, q2):
  def side(a, b, c):
    return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
  return (side(p1, p2, q1) * side(p1, p2, q2) < 0
          and side(q1, q2, p1) * side(q1, q2, p2) < 0)


@pytest.mark.parametrize("seed", range(5))
def test_default_corners_span_a_simple_quad(seed):
  rng = np.random.default_rng(seed)
  centres = rng.uniform(-10, 10, (6, 2))
  labels = np.repeat(np.arange(6), 50)
  embedding = centres[labels] + rng.normal(0, 0.3, (300, 2))
  c = umap_figures.default_corners(embedding, labels)
  # Quad edges in grid order: c0-c1 (top), c1-c3, c3-c2 (bottom), c2-c0.
  assert not _segments_cross(c[0], c[1], c[3], c[2])
  assert not _segments_cross(c[1], c[3], c[2], c[0])
  # Each corner is a class median.
  medians = np.stack([np.median(embedding[labels == k], axis=0)
                      for k in range(6)])
  assert np.min(np.linalg.norm(medians[None] - c[:, None], axis=-1),
                axis=1).max() < 1e-5


def test_figures_write_non_blank_pngs(tmp_path, non_blank_png):
  rng = np.random.default_rng(0)
  embedding = rng.normal(size=(200, 2)).astype(np.float32)
  labels = rng.integers(0, 5, 200)
  drawn = [
      umap_figures.plot_embedding(embedding, tmp_path / "a.png",
                                  labels=labels, label_name="digit"),
      umap_figures.plot_embedding(embedding, tmp_path / "b.png",
                                  labels=rng.uniform(size=200),
                                  categorical=False, label_name="var"),
      umap_figures.plot_inverse_grid(
          embedding, lambda p: np.tile(p[:, :1, None], (1, 6, 6)) % 1.0,
          tmp_path / "c.png", labels=labels),
  ]
  for figure in drawn:
    plt.close(figure)
  for name in "abc":
    assert non_blank_png(tmp_path / f"{name}.png")


def test_bad_shapes_are_rejected(tmp_path):
  with pytest.raises(ValueError, match="corners"):
    umap_figures.corner_grid(np.zeros((3, 2)))
  with pytest.raises(ValueError, match="embedding"):
    umap_figures.plot_embedding(np.zeros(5), tmp_path / "x.png")
  with pytest.raises(ValueError, match="images"):
    umap_figures.plot_inverse_grid(np.zeros((10, 2)),
                                   lambda p: np.zeros((3, 4, 4)),
                                   tmp_path / "y.png")
