"""Save and load: the loaded reducer transforms and inverts identically."""

import numpy as np
import pytest

from latent_jax import ParametricUMAP


def test_save_load_transform_identical(fitted_umap, digits_split, tmp_path):
  _, _, test, _ = digits_split
  fitted_umap.save(str(tmp_path / "model"))
  loaded = ParametricUMAP.load(str(tmp_path / "model"))
  np.testing.assert_array_equal(loaded.transform(test),
                                fitted_umap.transform(test))
  points = fitted_umap.embedding_[:5]
  np.testing.assert_array_equal(loaded.inverse_transform(points),
                                fitted_umap.inverse_transform(points))
  assert loaded.get_params() == fitted_umap.get_params()
  assert (loaded.graph_ != fitted_umap.graph_).nnz == 0
  fitted_umap.save(str(tmp_path / "lean"), include_training_data=False)
  lean = ParametricUMAP.load(str(tmp_path / "lean"))
  np.testing.assert_array_equal(lean.transform(test),
                                fitted_umap.transform(test))
  with pytest.raises(ValueError, match="saved without"):
    lean.transform(test, method="refine")
  with pytest.raises(ValueError, match="saved without"):
    lean.inverse_transform(points, method="interpolate")
