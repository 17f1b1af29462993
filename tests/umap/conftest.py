"""Fixtures of the ParametricUMAP tests: fast and tiny fit settings, a digits
split and one reducer fitted (and saved) on it, shared read-only by every
file here."""

import logging
import time
from typing import NamedTuple

import numpy as np
import pytest

from latent_jax import ParametricUMAP
from latent_jax.umap import progress

# Small, fast settings for fits in tests (defaults train ~10x longer).
FAST = dict(n_epochs=200, layout_epochs=10, init_epochs=50, batch_size=2048,
            random_state=0)
# The cheapest fit: one UMAP step (every tiny edge list fits in one batch),
# no layout or init phase; refits of one data shape reuse its compiled
# programs (programs.phase_programs).
TINY = dict(n_neighbors=5, n_epochs=1, batch_size=2048, spectral_init=False,
            layout_init=False, random_state=0)


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


class TimedFit(NamedTuple):
  """A fitted reducer, the wall time of its `fit` and its progress lines."""
  reducer: ParametricUMAP
  wall_seconds: float
  log_lines: list[str]


class _Lines(logging.Handler):
  def __init__(self):
    super().__init__(logging.DEBUG)
    self.lines = []

  def emit(self, record):
    self.lines.append(record.getMessage())


@pytest.fixture(scope="session")
def timed_fit(digits_split):
  """A ParametricUMAP with a decoder, fitted (verbose) on the training
  digits with the fast settings and the default input noise, with the fit's
  wall time and log lines. Tests must not refit it."""
  train, _, _, _ = digits_split
  reducer = ParametricUMAP(parametric_reconstruction=True, verbose=True,
                           **FAST)
  lines = _Lines()
  progress.LOGGER.addHandler(lines)
  try:
    started = time.perf_counter()
    reducer.fit(train)
    wall = time.perf_counter() - started
  finally:
    progress.LOGGER.removeHandler(lines)
  return TimedFit(reducer, wall, lines.lines)


@pytest.fixture(scope="session")
def fitted_umap(timed_fit):
  """`timed_fit`'s reducer (shared read-only)."""
  return timed_fit.reducer


@pytest.fixture(scope="session")
def saved_umap(fitted_umap, tmp_path_factory):
  """`fitted_umap` saved once (read-only: copy it before damaging it)."""
  path = str(tmp_path_factory.mktemp("saved_umap") / "model")
  fitted_umap.save(path)
  return path
