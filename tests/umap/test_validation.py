"""Bad inputs and hyperparameters, and use before fit, fail with a message."""

import numpy as np
import pytest

from latent_jax import ParametricUMAP
from latent_jax.umap import validation


@pytest.mark.parametrize("data, message", [
    (np.zeros(20), "Expected 2D array"),
    (np.zeros((20, 2, 2, 2, 2)), "2-D array"),
    (np.where(np.eye(20, 4) > 0, np.nan, 0.0), "NaN or Inf"),
    (np.zeros((10, 3)), "at least 16"),
    (np.zeros((0, 3)), "0 sample"),
    (np.zeros((12, 0)), "0 feature"),
    ([["a", "b"]] * 20, "numeric"),
    (np.zeros((20, 3)) + 1j, "Complex data not supported"),
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
  for keyword, value in [("metric", "no_such_metric"), ("verbose", 1),
                         ("chunk_mode", "fast"), ("set_op_mix_ratio", 2.0),
                         ("random_state", -1), ("batch_size", 8.0),
                         ("batch_size", 1),
                         ("spread", 0), ("negative_draws", 0),
                         ("negative_draws", 2.5),
                         ("final_augmentation", 1.5),
                         ("final_augmentation", -0.1)]:
    with pytest.raises(ValueError, match=f"^{keyword} must be"):
      ParametricUMAP(**{keyword: value}).fit(np.random.rand(30, 3))


def test_one_rule_per_constructor_keyword():
  defaults = ParametricUMAP().get_params()
  assert set(validation.RULES) == set(defaults)
  validation.check_hyperparameters(defaults)  # the defaults pass
  with pytest.raises(ValueError, match=r"Unknown hyperparameter.*'depth'"):
    validation.check_hyperparameters({**defaults, "depth": 3})
  del defaults["metric"]
  with pytest.raises(ValueError, match=r"Missing hyperparameter.*'metric'"):
    validation.check_hyperparameters(defaults)


def test_use_before_fit_and_shape_errors(fitted_umap):
  with pytest.raises(ValueError, match="not fitted"):
    ParametricUMAP().transform(np.zeros((3, 64)))
  with pytest.raises(ValueError, match="not fitted"):
    ParametricUMAP().inverse_transform(np.zeros((3, 2)))
  with pytest.raises(ValueError, match="has 63 features, but ParametricUMAP "
                     "is expecting 64"):
    fitted_umap.transform(np.zeros((3, 63)))
  with pytest.raises(ValueError, match=r"fitted on \(64,\)"):
    fitted_umap.transform(np.zeros((3, 8, 8)))  # 64 values, not 64 features
  with pytest.raises(ValueError, match="n_components=2"):
    fitted_umap.inverse_transform(np.zeros((3, 3)))
  with pytest.raises(ValueError, match="method"):
    fitted_umap.inverse_transform(np.zeros((3, 2)), method="magic")
  with pytest.raises(ValueError, match="'encoder' or 'refine'"):
    fitted_umap.transform(np.zeros((3, 64)), method="magic")
