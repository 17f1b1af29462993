"""The input PCA projection against scikit-learn, through a fit and a save."""

import jax.numpy as jnp
import numpy as np
import scipy.stats
from sklearn.decomposition import PCA

from latent_jax import ParametricUMAP
from latent_jax.umap import plan
from latent_jax.umap.projection import fit_projection, project


def test_input_projection_matches_pca_and_round_trips(tmp_path, fast_umap):
  rng = np.random.default_rng(0)
  # Ten well-separated principal axes (so they are well defined), noise.
  scales = np.r_[np.linspace(10, 3, 10), np.full(110, 0.3)]
  data = (rng.normal(size=(600, 120)) * scales @ scipy.stats.ortho_group.rvs(
      120, random_state=0) + 2.0).astype(np.float32)
  projection = fit_projection(data, 10, block_rows=256)  # several blocks
  reference = PCA(10, svd_solver="full").fit(data)
  np.testing.assert_allclose(projection.mean, reference.mean_, atol=1e-5)
  # Same axes up to sign.
  overlap = np.abs(np.sum(projection.components * reference.components_.T,
                          axis=0))
  np.testing.assert_allclose(overlap, 1.0, atol=1e-4)
  projected = np.asarray(project(projection, jnp.asarray(data)))
  np.testing.assert_allclose(np.abs(projected),
                             np.abs(reference.transform(data)), atol=1e-3)
  # Wide inputs go through it; the decoder still reconstructs input space.
  reducer = ParametricUMAP(pca_components=10, decoder=True, **fast_umap)
  reducer.fit(data)
  assert reducer.input_projection_.components.shape == (120, 10)
  assert reducer.inverse_transform(reducer.embedding_[:5]).shape == (5, 120)
  reducer.save(str(tmp_path / "model"))
  loaded = ParametricUMAP.load(str(tmp_path / "model"))
  np.testing.assert_array_equal(loaded.transform(data[:50]),
                                reducer.transform(data[:50]))
  # Narrow inputs (64 <= 2 x 50 features) stay raw.
  narrow = ParametricUMAP(**fast_umap).get_params()
  assert plan.encoder_features(narrow, (64,)) is None
  assert plan.encoder_features(narrow, (120,)) == 50
