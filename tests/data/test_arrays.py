"""`arrays`: .npz/.npy files read back against NumPy, memory-mapped and held
once, the bad inputs, and a run on an .npz of the digits equal to the
built-in loader's run."""

import os
import time
import tracemalloc

import jax
import numpy as np
import pytest
from flax import nnx
from sklearn.datasets import load_digits

from experiments.configs import vae_digits
from latent_jax import data
from latent_jax.data.arrays import FileArrays
from latent_jax.data.dataset import train_test_split_indices
from latent_jax.runs import vae as vae_runs

IMAGES = np.random.default_rng(0).integers(0, 256, (50, 6, 5, 3), np.uint8)
LABELS = np.arange(50) % 4


@pytest.mark.parametrize("save", ["savez", "savez_compressed"])
def test_npz_reads_back_split_by_the_seed(tmp_path, save):
  path = str(tmp_path / "x.npz")
  getattr(np, save)(path, images=IMAGES, labels=LABELS)
  ds = data.load_dataset("arrays", seed=3, path=path)
  train, test = train_test_split_indices(50, 0.2, 3)
  np.testing.assert_array_equal(ds.train_images,
                                IMAGES[train].astype(np.float32) / 255)
  np.testing.assert_array_equal(ds.test_labels[:, 0], LABELS[test])
  assert ds.categorical == (True,) and ds.likelihood == "bernoulli"
  # An uncompressed member is mapped in place, a compressed one inflated.
  mapped = isinstance(FileArrays(path).get("images", "data.images_key"),
                      np.memmap)
  assert mapped == (save == "savez")


def test_flat_npy_given_test_file_and_float_labels(tmp_path):
  np.save(tmp_path / "x.npy", IMAGES.reshape(50, -1))
  ds = data.load_dataset("arrays", seed=0, path=str(tmp_path / "x.npy"),
                         image_shape=(6, 5, 3))
  assert ds.image_shape == (6, 5, 3) and ds.label_names == ("index",)
  floats = np.linspace(-1, 2, 50 * 30, dtype=np.float32).reshape(50, 6, 5)
  columns = np.stack([LABELS * 0.5, LABELS * 2.0], 1)
  np.savez(tmp_path / "a.npz", images=floats, labels=columns)
  np.savez(tmp_path / "b.npz", images=floats[:7], labels=columns[:7])
  ds = data.load_dataset("arrays", seed=0, path=str(tmp_path / "a.npz"),
                         test_path=str(tmp_path / "b.npz"),
                         label_names="width,height")
  assert (ds.num_train, ds.num_test) == (50, 7)
  assert ds.label_names == ("width", "height")
  assert ds.categorical == (False, False) and ds.likelihood == "gaussian"
  data.check_likelihood(ds, "gaussian")
  with pytest.raises(ValueError, match="loss.likelihood"):
    data.check_likelihood(ds, "bernoulli")


def _bad_files(tmp_path):
  nan = IMAGES.astype(np.float32) / 255
  nan[1, 2, 3, 0] = np.nan
  np.savez(tmp_path / "nan.npz", images=nan)
  np.savez(tmp_path / "short.npz", images=IMAGES, labels=LABELS[:9])
  np.savez(tmp_path / "ok.npz", images=IMAGES, labels=LABELS)
  np.save(tmp_path / "flat.npy", IMAGES.reshape(50, -1))
  return {
      "no such file": dict(path=str(tmp_path / "missing.npz")),
      "no key 'pixels'.*data.images_key": dict(path=str(tmp_path / "ok.npz"),
                                               images_key="pixels"),
      "no key 'y'.*data.labels_key": dict(path=str(tmp_path / "ok.npz"),
                                          labels_key="y"),
      "NaN": dict(path=str(tmp_path / "nan.npz")),
      "9.*50 images": dict(path=str(tmp_path / "short.npz")),
      "data.image_shape": dict(path=str(tmp_path / "flat.npy")),
      "data.label_names": dict(path=str(tmp_path / "ok.npz"),
                               label_names="a,b"),
  }


def test_bad_input_errors_name_the_file_and_the_field(tmp_path):
  for pattern, options in _bad_files(tmp_path).items():
    with pytest.raises(ValueError, match=pattern) as info:
      data.load_dataset("arrays", seed=0, **options)
    assert os.path.basename(options["path"]) in str(info.value)


def test_60000_mnist_sized_images_load_fast_and_are_held_once(tmp_path):
  path = str(tmp_path / "big.npz")
  rng = np.random.default_rng(0)
  np.savez(path, images=rng.integers(0, 256, (60000, 28, 28), np.uint8))
  # tracemalloc counts every NumPy buffer allocated while loading (the
  # memory-mapped file is not one): the float32 splits, and any full copy
  # of them or of the uint8 file (a quarter of their size) on the way.
  tracemalloc.start()
  try:
    started = time.perf_counter()
    ds = data.load_dataset("arrays", seed=0, path=path)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  float32_bytes = 60000 * 28 * 28 * 4
  assert ds.num_train + ds.num_test == 60000
  assert seconds < 5 and float32_bytes <= peak < 1.25 * float32_bytes, peak


def test_digits_through_an_npz_train_to_the_builtin_loaders_parameters(
    vae_digits_run, smoke_config, tmp_path):
  bunch = load_digits()
  path = str(tmp_path / "digits.npz")
  np.savez(path, images=(bunch.images / 16.0).astype(np.float32),
           labels=bunch.target)
  # The built-in run's config but for the data; evaluation settings do not
  # touch the parameters, so the cheapest ones are used.
  config = smoke_config(vae_digits, **{"eval.figures": "loss_curves",
                                       "eval.iwae_samples": 0,
                                       "train.eval_every_steps": 10_000,
                                       "data.name": "arrays",
                                       "data.path": path})
  vae_runs.train_and_evaluate(config, str(tmp_path / "run"))
  ours = vae_runs.restore_run(str(tmp_path / "run"))
  builtin = vae_runs.restore_run(vae_digits_run)
  assert ours.step == builtin.step > 0
  leaves = jax.tree.leaves(nnx.state(ours.model, nnx.Param))
  reference = jax.tree.leaves(nnx.state(builtin.model, nnx.Param))
  assert len(leaves) == len(reference) > 0
  for a, b in zip(leaves, reference):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
