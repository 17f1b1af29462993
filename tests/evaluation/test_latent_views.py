"""Low-dimensional views: PCA against scikit-learn, the two inverses, the
line decode and the view figure; the comparison figure's baseline column."""

import numpy as np
import pytest
from scipy.spatial import cKDTree
from sklearn.decomposition import PCA

from latent_jax.evaluation import exploration_figures
from latent_jax.evaluation.latent_views import (decode_view_line, fit_pca,
                                                nearest_code_inverse,
                                                pca_image_baseline,
                                                plot_latent_view, view_line)


@pytest.mark.parametrize("shape", [(400, 5), (4, 7)])
def test_pca_matches_scikit_learn(shape):
  rng = np.random.default_rng(0)
  points = rng.normal(size=shape) @ rng.normal(size=(shape[1], shape[1]))
  ours = fit_pca(points, 2)
  reference = PCA(n_components=2).fit(points)
  np.testing.assert_allclose(ours.explained_variance_ratio,
                             reference.explained_variance_ratio_, rtol=1e-9)
  # Signs too: both follow svd_flip (largest loading positive).
  np.testing.assert_allclose(ours.components, reference.components_,
                             atol=1e-9)
  np.testing.assert_allclose(ours.project(points),
                             reference.transform(points), atol=1e-8)
  with pytest.raises(ValueError, match="n_components"):
    fit_pca(points, shape[1] + 1)


def test_pca_inverse_is_exact_in_the_principal_plane():
  rng = np.random.default_rng(1)
  basis = np.linalg.qr(rng.normal(size=(6, 2)))[0].T       # [2, 6]
  codes = rng.normal(size=(300, 2)) * [3.0, 1.0] @ basis + 0.5
  pca = fit_pca(codes, 2)
  np.testing.assert_allclose(pca.invert(pca.project(codes)), codes,
                             atol=1e-5)
  view = rng.normal(size=(20, 2))
  np.testing.assert_allclose(pca.project(pca.invert(view)), view, atol=1e-5)


def test_nearest_code_inverse_returns_the_code_behind_the_nearest_point():
  rng = np.random.default_rng(2)
  codes = rng.normal(size=(500, 4)).astype(np.float32)
  pca = fit_pca(codes, 2)
  projected = pca.project(codes)
  invert = nearest_code_inverse(codes, projected)
  np.testing.assert_array_equal(invert(projected[:50]), codes[:50])
  queries = rng.normal(size=(30, 2)) * 2
  _, nearest = cKDTree(projected).query(queries)   # independent reference
  np.testing.assert_array_equal(invert(queries), codes[nearest])
  with pytest.raises(ValueError, match="one view point per code"):
    nearest_code_inverse(codes, projected[:10])


def test_points_on_a_view_line_map_back_near_the_codes_they_came_from(
    fake_decoder):
  # Dense codes on a plane in 5-D: each line point's nearest code projects
  # back within the spacing of the codes, and the exact inverse lands on it.
  rng = np.random.default_rng(3)
  basis = np.linalg.qr(rng.normal(size=(5, 2)))[0].T
  grid = np.stack(np.meshgrid(np.linspace(-2, 2, 41), np.linspace(-1, 1, 21)),
                  -1).reshape(-1, 2)
  codes = (grid @ basis).astype(np.float32)
  pca = fit_pca(codes, 2)
  start, end = pca.project(codes[[0, -1]])
  for invert, tolerance in ((pca.invert, 1e-5),
                            (nearest_code_inverse(codes, pca.project(codes)),
                             0.1 / np.sqrt(2) + 1e-6)):
    points, line_codes, images = decode_view_line(fake_decoder(), invert,
                                                  start, end, steps=7)
    np.testing.assert_allclose(points, view_line(start, end, 7))
    landed = pca.project(line_codes)
    assert np.linalg.norm(landed - points, axis=1).max() <= tolerance
    assert images.shape == (7, 6, 6, 1)


@pytest.mark.parametrize("categorical", [False, True])
def test_latent_view_figure_decodes_once(tmp_path, categorical, fake_decoder,
                                         check_figure):
  rng = np.random.default_rng(4)
  codes = rng.normal(size=(300, 3)).astype(np.float32)
  labels = rng.integers(0, 4, 300) if categorical else codes[:, 0]
  pca = fit_pca(codes, 2)
  decode = fake_decoder()
  out = tmp_path / "view.png"
  figure = plot_latent_view(
      decode, codes, labels, "label", pca.project,
      nearest_code_inverse(codes, pca.project(codes)), [-2, 0], [2, 0], out,
      steps=5, categorical=categorical, line_name="test")
  assert [call.shape for call in decode.calls] == [(5, 3)]
  check_figure(figure, out)
  with pytest.raises(ValueError, match=r"\[N, 2\]"):
    plot_latent_view(decode, codes, labels, "label", lambda c: c, pca.invert,
                     [0, 0], [1, 1], tmp_path / "bad.png")
  with pytest.raises(ValueError, match="colour_values must be"):
    plot_latent_view(decode, codes, labels[:-1], "label", pca.project,
                     pca.invert, [0, 0], [1, 1])
  with pytest.raises(ValueError, match="codes must be"):
    plot_latent_view(decode, codes[:, 0], labels, "label", pca.project,
                     pca.invert, [0, 0], [1, 1])


def test_pca_image_baseline_matches_scikit_learn():
  rng = np.random.default_rng(5)
  train = rng.random((200, 5, 4, 1))
  test = rng.random((30, 5, 4, 1))
  _, points, reconstructions = pca_image_baseline(train, test)
  reference = PCA(n_components=2).fit(train.reshape(200, -1))
  expected = reference.inverse_transform(
      reference.transform(test.reshape(30, -1))).reshape(test.shape)
  np.testing.assert_allclose(reconstructions, expected, atol=1e-9)
  np.testing.assert_allclose(np.abs(points),
                             np.abs(reference.transform(test.reshape(30, -1))),
                             atol=1e-9)


def test_run_comparison_with_a_baseline_column(tmp_path, fake_decoder,
                                               check_figure):
  rng = np.random.default_rng(6)
  codes = [rng.normal(size=(100, 2)), rng.normal(size=(100, 3)),
           rng.normal(size=(100, 2))]
  labels = [rng.integers(0, 3, 100)] * 3
  errors = [rng.gamma(3, 0.2, 100) for _ in range(3)]
  decode = fake_decoder()
  grids = [decode(rng.normal(size=(9, 2))) for _ in range(3)]
  out = tmp_path / "compare.png"
  check_figure(exploration_figures.plot_run_comparison(
      ["vae", "ae", "pca_2d"], codes, labels, "digit", errors, grids, out,
      axis_names=[None, None, ("PC1", "PC2")],
      grid_titles=["shared grid", "shared grid", "PCA inverse"],
      categorical=True), out)
  with pytest.raises(ValueError, match=r"labels\[1\] must be \[N\]"):
    exploration_figures.plot_run_comparison(
        ["vae", "ae", "pca_2d"], codes, [labels[0], labels[0][:-1],
                                         labels[0]], "digit", errors, grids)
  with pytest.raises(ValueError, match="one entry per run"):
    exploration_figures.plot_run_comparison(
        ["vae", "ae", "pca_2d"], codes, labels, "digit", errors, grids, out,
        axis_names=[None])
