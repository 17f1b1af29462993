"""Bad inputs and hyperparameters, and use before fit, fail with a message."""

import numpy as np
import pytest

from latent_jax import ParametricUMAP


@pytest.mark.parametrize("data, message", [
    (np.zeros(20), "2-D array"),
    (np.zeros((20, 2, 2, 2, 2)), "2-D array"),
    (np.where(np.eye(20, 4) > 0, np.nan, 0.0), "NaN or Inf"),
    (np.zeros((10, 3)), "at least 16"),
    (np.zeros((0, 3)), "empty"),
    ([["a", "b"]] * 20, "numeric"),
])
def test_bad_fit_inputs(data, message, fast_umap):
  with pytest.raises(ValueError, match=message):
    ParametricUMAP(**fast_umap).fit(data)


def test_bad_hyperparameters():
  with pytest.raises(ValueError, match="n_neighbors"):
    ParametricUMAP(n_neighbors=1).fit(np.random.rand(30, 3))
  with pytest.raises(ValueError, match="Unknown encoder"):
    ParametricUMAP(encoder="resnet").fit(np.random.rand(30, 3))
  with pytest.raises(ValueError, match="convolutional"):
    ParametricUMAP(encoder="conv").fit(np.random.rand(30, 3))
  with pytest.raises(ValueError, match="min_dist"):
    ParametricUMAP(min_dist=2.0).fit(np.random.rand(30, 3))
  with pytest.raises(ValueError, match="neighbor_mixing"):
    ParametricUMAP(neighbor_mixing=1.5).fit(np.random.rand(30, 3))
  for noise in (-0.1, float("nan"), float("inf")):
    with pytest.raises(ValueError, match="input_noise"):
      ParametricUMAP(input_noise=noise).fit(np.random.rand(30, 3))
  with pytest.raises(ValueError, match="pca_components"):
    ParametricUMAP(pca_components=-1).fit(np.random.rand(30, 3))


def test_use_before_fit_and_shape_errors(fitted_umap):
  with pytest.raises(ValueError, match="not fitted"):
    ParametricUMAP().transform(np.zeros((3, 64)))
  with pytest.raises(ValueError, match="not fitted"):
    ParametricUMAP().inverse_transform(np.zeros((3, 2)))
  with pytest.raises(ValueError, match=r"fitted on \(64,\)"):
    fitted_umap.transform(np.zeros((3, 63)))
  with pytest.raises(ValueError, match="n_components=2"):
    fitted_umap.inverse_transform(np.zeros((3, 3)))
  with pytest.raises(ValueError, match="method"):
    fitted_umap.inverse_transform(np.zeros((3, 2)), method="magic")
  with pytest.raises(ValueError, match="'encoder' or 'refine'"):
    fitted_umap.transform(np.zeros((3, 64)), method="magic")
