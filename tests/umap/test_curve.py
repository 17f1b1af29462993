"""The low-dimensional similarity curve's a, b against umap-learn."""

import numpy as np
import pytest

from latent_jax.umap.curve import find_ab_params


@pytest.mark.parametrize("spread, min_dist", [(1.0, 0.1), (1.0, 0.5),
                                              (2.0, 0.0)])
def test_find_ab_params_matches_umap_learn(umap_learn, spread, min_dist):
  ours = find_ab_params(spread, min_dist)
  theirs = umap_learn.find_ab_params(spread, min_dist)
  np.testing.assert_allclose(ours, theirs, rtol=1e-4)
