"""Fixtures shared by the whole suite: tiny datasets, smoke configs, and the
smoke runs that several test files read.

The session-scoped runs are shared read-only: a test that writes into a run's
workdir works on a copy (`copy_run`). Folder conftest.py files add what only
their folder uses (a fitted ParametricUMAP in umap/, fake decoders and latent
codes in evaluation/, tiny images in train/).
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

# One persistent XLA compilation cache for the session and every subprocess
# it starts (set before JAX is imported): the suite's many smoke runs compile
# the same programs, and a cache hit returns the same executable.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix="latent_jax_test_xla_")
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
  os.environ.update({"JAX_COMPILATION_CACHE_DIR": _CACHE,
                     "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                     "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"})

import numpy as np  # noqa: E402
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from experiments.configs import vae_digits, vae_heatmaps
from latent_jax.runs import vae as vae_runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- Accelerator-only tests ---------------------------------------------------


def pytest_collection_modifyitems(config, items):
  """Tests marked `accelerator` (pyproject.toml) skip on a CPU backend."""
  del config
  import jax  # pylint: disable=g-import-not-at-top
  if jax.default_backend() != "cpu":
    return
  skip = pytest.mark.skip(reason="accelerator test; the JAX backend is cpu "
                          "(run on a GPU/TPU: pytest -m accelerator)")
  for item in items:
    if "accelerator" in item.keywords:
      item.add_marker(skip)


# --- The repository and its commands -----------------------------------------


@pytest.fixture(scope="session")
def repo_root():
  """The repository root: the working directory of every command run."""
  return REPO


@pytest.fixture(scope="session")
def run_python():
  """Runs `python ARGS...` (e.g. "-m", "experiments.train", ...) in the
  repository root; returns the CompletedProcess with text stdout/stderr."""

  def run(*args, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)

  return run


# --- Tiny datasets ------------------------------------------------------------


@pytest.fixture(scope="session")
def digits():
  """scikit-learn's 1,797 8x8 digits as [N, 64] floats in [0, 1], labels."""
  images, labels = load_digits(return_X_y=True)
  return (images / 16.0).astype(np.float32), labels


@pytest.fixture(scope="session")
def heatmap_cache(tmp_path_factory):
  """One heatmap cache directory for the session (the arrays are keyed by
  their generating parameters, so readers never see each other's data)."""
  return str(tmp_path_factory.mktemp("heatmap_cache"))


# --- Smoke configs ------------------------------------------------------------


def _smoke_config(module, arg="smoke", **overrides):
  config = module.get_config(arg)
  config.unlock()
  for path, value in overrides.items():
    section, _, field = path.rpartition(".")
    (config[section] if section else config)[field] = value
  config.lock()
  return config


@pytest.fixture(scope="session")
def smoke_config():
  """`smoke_config(module, arg="smoke", **{"train.epochs": 3, "seed": 1})`:
  the config module's `get_config(arg)` with the dotted fields set, locked."""
  return _smoke_config


def _ensemble_config(kl_weights=(), seeds=(), **overrides):
  overrides = {"ensemble.kl_weights": tuple(kl_weights),
               "ensemble.seeds": tuple(seeds),
               "eval.figures": "loss_curves,reconstructions",
               "eval.iwae_samples": 0,  # the report's own tests cover it
               **overrides}
  return _smoke_config(vae_digits, **overrides)


@pytest.fixture(scope="session")
def ensemble_config():
  """`ensemble_config(kl_weights, seeds, **overrides)`: the digits smoke VAE
  with those ensemble members, two figures and no IWAE; no members given is
  the single run."""
  return _ensemble_config


# --- Smoke runs, trained once per session and read by several files -----------


@pytest.fixture(scope="session")
def vae_heatmaps_run(tmp_path_factory, heatmap_cache):
  """The heatmap smoke VAE, 4 epochs, every figure: (config, workdir,
  summary)."""
  workdir = str(tmp_path_factory.mktemp("vae_heatmaps"))
  config = _smoke_config(vae_heatmaps, **{"data.cache_dir": heatmap_cache,
                                          "train.epochs": 4})
  summary = vae_runs.train_and_evaluate(config, workdir)
  return config, workdir, summary


@pytest.fixture(scope="session")
def vae_digits_run(tmp_path_factory):
  """The digits smoke VAE (latent 2, a class label), loss curves only: its
  workdir."""
  workdir = str(tmp_path_factory.mktemp("vae_digits"))
  vae_runs.train_and_evaluate(
      _smoke_config(vae_digits, **{"eval.figures": "loss_curves"}), workdir)
  return workdir


@pytest.fixture
def copy_run(tmp_path):
  """`copy_run(workdir)`: a copy of a shared run's workdir to write into."""

  def copy(workdir):
    target = str(tmp_path / os.path.basename(workdir.rstrip(os.sep)))
    shutil.copytree(workdir, target)
    return target

  return copy


# --- Figures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def non_blank_png():
  """`non_blank_png(path)`: whether the PNG's grey levels vary (std > 1)."""

  def check(path):
    pixels = np.asarray(Image.open(path).convert("L"), np.float32)
    return pixels.std() > 1.0

  return check
