"""The package as users install it: the wheel built from pyproject.toml holds
every latent_jax module and nothing else, and once installed (outside the
checkout) it imports without TensorFlow, trains a VAE and fits a
ParametricUMAP through the public API.

One wheel build, one install and one fresh interpreter serve every test here
(module fixtures): the build is offline (`--no-build-isolation`, with the
setuptools the `[test]` extra installs).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.umap.conftest import FAST

REPO = pathlib.Path(__file__).resolve().parents[1]
LIBRARY = REPO / "latent_jax"
# Not source: caches anywhere, and the checkout's own outputs at its root.
_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info",
                                 ".pytest_cache")
_ROOT_OUTPUTS = {".git", "build", "dist", "runs", "workdirs", ".venv"}


def _not_source(folder, names):
  top = _ROOT_OUTPUTS if pathlib.Path(folder) == REPO else set()
  return set(_CACHES(folder, names)) | (top & set(names))

# Runs in a fresh interpreter whose only path to latent_jax is the install.
_USE_INSTALLED = r"""
import json, sys
import latent_jax, latent_jax.data, latent_jax.evaluation, latent_jax.runs
import latent_jax.umap
heavy = sorted(name for name in sys.modules
               if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"))

import jax, jax.numpy as jnp, numpy as np, optax
from flax import nnx
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness

x, _ = load_digits(return_X_y=True)
images = jnp.asarray(x[:32].reshape(-1, 8, 8, 1) / 16.0, jnp.float32)
vae = latent_jax.build_model("vae", "small", input_shape=(8, 8, 1),
                             latent_dim=2, rngs=nnx.Rngs(0))
graphdef, params = nnx.split(vae)
optimizer = optax.adam(1e-2)
opt_state = optimizer.init(params)

def loss_fn(params):
  terms = nnx.merge(graphdef, params).loss_terms(images, jax.random.key(0),
                                                 likelihood="bernoulli")
  return jnp.mean(latent_jax.losses.negative_elbo(terms["recon"],
                                                  terms["kl"], 1.0))

@jax.jit
def step(params, opt_state):
  loss, grads = jax.value_and_grad(loss_fn)(params)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss

losses = []
for _ in range(3):
  params, opt_state, loss = step(params, opt_state)
  losses.append(float(loss))

reducer = latent_jax.ParametricUMAP(n_components=2, **json.loads(sys.argv[1]))
embedding = reducer.fit_transform(x[:200])
new_points = reducer.transform(x[200:250])
print(json.dumps({
    "files": {name: sys.modules[name].__file__ for name in (
        "latent_jax", "latent_jax.umap", "latent_jax.train.ensemble")},
    "heavy": heavy, "losses": losses,
    "embedding_shape": list(np.shape(embedding)),
    "new_shape": list(np.shape(new_points)),
    "finite": bool(np.isfinite(embedding).all()
                   and np.isfinite(new_points).all()),
    "trustworthiness": float(trustworthiness(x[:200], embedding,
                                             n_neighbors=10)),
}))
"""


def _pip(*args, cwd):
  result = subprocess.run([sys.executable, "-m", "pip", "-q", *args],
                          cwd=cwd, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  """The wheel built from a copy of the checkout (the checkout stays clean)."""
  root = tmp_path_factory.mktemp("build")
  source = root / "source"
  shutil.copytree(REPO, source, ignore=_not_source)
  _pip("wheel", str(source), "--no-deps", "--no-build-isolation", "-w",
       str(root / "wheels"), cwd=root)
  (path,) = (root / "wheels").glob("latent_jax-*.whl")
  return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
  """(install dir, JSON report of _USE_INSTALLED) for the installed wheel."""
  root = tmp_path_factory.mktemp("install")
  site = root / "site"
  _pip("install", "--no-deps", "--no-index", "--target", str(site),
       str(wheel), cwd=root)
  workdir = root / "elsewhere"
  workdir.mkdir()
  # The test environment's packages stay visible; the checkout does not.
  env = dict(os.environ, PYTHONPATH=str(site))
  result = subprocess.run(
      [sys.executable, "-P", "-c", _USE_INSTALLED, json.dumps(FAST)],
      cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-4000:]
  return site, json.loads(result.stdout.strip().splitlines()[-1])


def test_wheel_holds_every_latent_jax_module_and_no_experiments(wheel):
  names = zipfile.ZipFile(wheel).namelist()
  top = {name.split("/")[0] for name in names
         if not name.split("/")[0].endswith(".dist-info")}
  assert top == {"latent_jax"}, top
  modules = {path.relative_to(REPO).as_posix()
             for path in LIBRARY.rglob("*.py")
             if "__pycache__" not in path.parts}
  assert modules <= set(names), sorted(modules - set(names))
  packages = {path.parent.relative_to(REPO).as_posix()
              for path in LIBRARY.rglob("__init__.py")}
  assert {"latent_jax/data", "latent_jax/umap", "latent_jax/runs"} <= packages
  metadata = next(zipfile.ZipFile(wheel).read(name).decode()
                  for name in names if name.endswith(".dist-info/METADATA"))
  for extra in ("tfds", "test", "notebook", "cuda12", "tpu"):
    assert f"Provides-Extra: {extra}" in metadata
  assert "tensorflow" not in "".join(
      line for line in metadata.splitlines()
      if line.startswith("Requires-Dist:") and "extra ==" not in line)


def test_installed_package_imports_from_the_install_without_tensorflow(
    installed):
  site, report = installed
  for name, file in report["files"].items():
    assert pathlib.Path(file).is_relative_to(site), (name, file)
    assert not pathlib.Path(file).is_relative_to(REPO), (name, file)
  assert report["heavy"] == []


def test_installed_package_trains_a_vae_and_fits_parametric_umap(installed):
  _, report = installed
  losses = report["losses"]
  assert len(losses) == 3 and losses[2] < losses[0], losses
  assert report["embedding_shape"] == [200, 2]
  assert report["new_shape"] == [50, 2]
  assert report["finite"]
  # The embedding keeps neighbourhoods (scikit-learn's measure).
  assert report["trustworthiness"] > 0.8, report["trustworthiness"]
