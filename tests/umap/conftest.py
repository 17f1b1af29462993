"""Fixtures of the ParametricUMAP tests: fast fit settings, a digits split and
one reducer fitted on it, shared read-only by every file here."""

import numpy as np
import pytest

from latent_jax import ParametricUMAP

# Small, fast settings for fits in tests (defaults train ~10x longer).
FAST = dict(n_epochs=30, layout_epochs=10, init_epochs=50, batch_size=2048,
            random_state=0)


@pytest.fixture
def fast_umap():
  """The fast fit settings, as keyword arguments of ParametricUMAP."""
  return dict(FAST)


@pytest.fixture(scope="session")
def umap_learn():
  """umap-learn's implementation module (the reference), or a skip."""
  return pytest.importorskip("umap.umap_")


@pytest.fixture(scope="session")
def digits_split(digits):
  """(train, train_labels, test, test_labels): 1,400 / 397 of the digits."""
  data, labels = digits
  order = np.random.default_rng(0).permutation(len(data))
  train, test = order[:1400], order[1400:]
  return data[train], labels[train], data[test], labels[test]


@pytest.fixture(scope="session")
def fitted_umap(digits_split):
  """A ParametricUMAP with a decoder, fitted on the training digits with the
  fast settings and the default input noise. Tests must not refit it."""
  train, _, _, _ = digits_split
  reducer = ParametricUMAP(parametric_reconstruction=True, **FAST)
  reducer.fit(train)
  return reducer
