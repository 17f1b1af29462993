"""The 2-D view figures: the t-SNE view (scikit-learn's TSNE, a subsample,
lookups as its maps) and the PCA view's agreement with latent_codes.png."""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from latent_jax.evaluation import figures, registry, view_figures
from latent_jax.evaluation.exploration import plan_exploration


def _clusters(n, dim=3, seed=0):
  """[n, dim] codes in three well-separated clusters, and their cluster."""
  rng = np.random.default_rng(seed)
  cluster = rng.integers(0, 3, n)
  centres = np.eye(dim)[:3] * 8.0
  return (centres[cluster] + rng.normal(size=(n, dim))).astype(np.float32), \
      cluster


def test_tsne_keeps_neighbours_on_a_bounded_subsample():
  codes, cluster = _clusters(120)
  tsne = view_figures.fit_tsne(codes, max_points=90)
  assert len(tsne.indices) == 90 and np.all(np.diff(tsne.indices) > 0)
  sample = codes[tsne.indices]
  assert trustworthiness(sample, tsne.points, n_neighbors=5) > 0.9
  # Each point's nearest t-SNE neighbour is of its own cluster.
  distances = np.linalg.norm(tsne.points[:, None] - tsne.points[None], axis=-1)
  np.fill_diagonal(distances, np.inf)
  labels = cluster[tsne.indices]
  assert np.mean(labels[distances.argmin(1)] == labels) > 0.97
  # A handful of codes: the perplexity drops below the sample count.
  assert view_figures.fit_tsne(codes[:8]).points.shape == (8, 2)
  with pytest.raises(ValueError, match="N >= 4"):
    view_figures.fit_tsne(codes[:3])


def test_tsne_view_decodes_embedded_codes_along_its_line(tmp_path,
                                                         latent_context,
                                                         fake_decoder,
                                                         check_figure,
                                                         monkeypatch):
  monkeypatch.setattr(view_figures, "TSNE_MAX_POINTS", 80)
  fitted, fit = [], view_figures.fit_tsne
  monkeypatch.setattr(view_figures, "fit_tsne",
                      lambda *args: fitted.append(fit(*args)) or fitted[-1])
  context = latent_context(categorical=True, dim=3, n=120)
  plan = plan_exploration(None, context)
  decode = fake_decoder(8)
  out = tmp_path / "latent_tsne.png"
  figure = view_figures.draw_tsne_view(decode, context, plan, out, "gray")
  (tsne,) = fitted
  assert len(tsne.indices) == 80  # the subsample bound
  embedded = context.codes[tsne.indices]
  (line_codes,) = decode.calls
  # Every decoded code is an embedded code (the nearest to its line point).
  assert all(np.any(np.all(embedded == code, axis=1)) for code in line_codes)
  # The scatter shows the embedded codes at their t-SNE points.
  np.testing.assert_allclose(
      np.sort(figure.axes[0].collections[0].get_offsets(), axis=0),
      np.sort(tsne.points, axis=0), rtol=1e-6)
  check_figure(figure, out)
  assert "latent_tsne" in registry.RUN_FIGURES
  assert "latent_tsne" in registry.EXPLORATION_FIGURES


def test_latent_codes_and_latent_pca_show_the_same_principal_axes(
    latent_context, fake_decoder):
  context = latent_context(categorical=False, dim=5, n=300)
  # Flip a loading's sign: a hand-rolled SVD may disagree, one PCA cannot.
  context = dataclasses.replace(context, codes=context.codes * [1, -1, 1, -1,
                                                                 1])
  plan = plan_exploration(None, context)
  codes_figure = figures.plot_latent_codes(context.codes, context.labels,
                                           context.label_names)
  pca_figure = view_figures.draw_pca_view(fake_decoder(), context, plan)
  np.testing.assert_allclose(
      codes_figure.axes[0].collections[0].get_offsets(),
      pca_figure.axes[0].collections[0].get_offsets(), atol=1e-5)
  plt.close(codes_figure)
  plt.close(pca_figure)
