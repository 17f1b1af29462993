"""Tests for latent_jax.evaluation.figures: every figure renders a real PNG
(checked by `check_figure`, evaluation/conftest.py)."""

from __future__ import annotations

import glob
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from latent_jax.evaluation import figures  # noqa: E402
from latent_jax.evaluation.prototypes import group_prototypes  # noqa: E402


def _gauss_images(n: int, size: int = 12, channels: int = 1) -> np.ndarray:
  """[n, size, size, channels] blobs of varying width, values in [0, 1]."""
  g = np.linspace(-2, 2, size)
  widths = np.linspace(0.3, 1.5, n)[:, None, None]
  img = np.exp(
      -(g[None, :, None] ** 2 + g[None, None, :] ** 2) / (2 * widths**2)
  )
  return np.repeat(img[..., None], channels, axis=-1).astype(np.float32)


def test_loss_curves_train_test_and_nan(tmp_path, check_figure):
  records = []
  for step in range(0, 1000, 50):
    records.append(
        {
            "step": step,
            "split": "train",
            "loss": 500.0 / (1 + step / 100),
            "recon": 400.0 - step / 10,
            "kl": 5.0 + step / 100,
            "steps_per_sec": 20.0,
            "eta_sec": 99.0,
            "learning_rate": 1e-3,
        }
    )
    if step % 200 == 0:
      records.append(
          {
              "step": step,
              "split": "test",
              "neg_elbo": 520.0 / (1 + step / 100),
              "recon": 410.0 - step / 10,
              "kl": 6.0 + step / 100,
          }
      )
  records[3]["loss"] = float("nan")
  records.append(
      {"step": 1000, "loss": np.float32(40.0)}
  )  # no split -> train; NumPy scalar
  out = tmp_path / "sub" / "loss.png"
  check_figure(figures.plot_loss_curves(records, str(out)), out)


def test_loss_curves_single_record_and_explicit_keys(tmp_path, check_figure):
  out = tmp_path / "one.png"
  check_figure(
      figures.plot_loss_curves(
          [{"step": 1, "split": "train", "loss": 3.0}], str(out)
      ),
      out,
  )
  out2 = tmp_path / "keys.png"
  recs = [{"step": s, "loss": float(s), "kl": float("nan")} for s in range(5)]
  check_figure(
      figures.plot_loss_curves(recs, str(out2), keys=["kl", "loss"]), out2
  )


def test_default_metric_keys_skip_timing():
  assert figures._is_plottable_metric("neg_elbo")
  for key in (
      "step",
      "epoch",
      "steps_per_sec",
      "eta_sec",
      "learning_rate",
      "time",
  ):
    assert not figures._is_plottable_metric(key)


@pytest.mark.parametrize("n", [5, 16, 30])
def test_reconstructions(tmp_path, n, check_figure):
  x = _gauss_images(n)
  out = tmp_path / f"recon{n}.png"
  check_figure(
      figures.plot_reconstructions(x, 1 - x, str(out), max_images=24), out
  )


def test_reconstructions_shape_mismatch(tmp_path):
  with pytest.raises(ValueError):
    figures.plot_reconstructions(
        _gauss_images(4), _gauss_images(3), str(tmp_path / "bad.png")
    )
  assert len(plt.get_fignums()) == 0


@pytest.mark.parametrize("channels", [1, 3])
def test_samples_gray_and_rgb(tmp_path, channels, check_figure):
  out = tmp_path / f"samples{channels}.png"
  check_figure(
      figures.plot_samples(_gauss_images(10, channels=channels), str(out)), out
  )


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_latent_codes_continuous_and_categorical(tmp_path, d, check_figure):
  rng = np.random.default_rng(d)
  n = 6000  # above the 5000-point cap, exercising the subsampling path
  cont = rng.uniform(0.3, 2.0, size=(n, 2))
  cls = rng.integers(0, 10, size=n)
  codes = np.concatenate(
      [cont, cls[:, None] / 3.0, rng.normal(size=(n, 3))], axis=1
  )[:, :d]
  labels = np.column_stack([cont, cls])
  out = tmp_path / f"latent{d}.png"
  path = figures.plot_latent_codes(
      codes,
      labels,
      ["var_x", "var_y", "digit"],
      str(out),
      categorical=[False, False, True],
  )
  check_figure(path, out)
  # Inferred label types (digit column is integer-valued) must also work.
  out2 = tmp_path / f"latent{d}_auto.png"
  check_figure(
      figures.plot_latent_codes(
          codes[:300], labels[:300], ["a", "b", "digit"], str(out2)
      ),
      out2,
  )


def test_figures_without_a_path_are_returned_and_write_nothing(
    tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  figure = figures.plot_samples(_gauss_images(4))
  assert figure.axes and plt.fignum_exists(figure.number)
  plt.close(figure)
  assert not list(tmp_path.iterdir())


def test_no_module_selects_a_backend():
  # Notebooks keep their inline backend: only experiments/ selects Agg.
  root = os.path.join(os.path.dirname(__file__), "..", "..", "latent_jax")
  offenders = [path for path in glob.glob(f"{root}/**/*.py", recursive=True)
               if "matplotlib.use(" in open(path).read()]
  assert offenders == []


def test_wrong_shapes_name_the_argument():
  codes = np.zeros((10, 3))
  with pytest.raises(ValueError, match="labels must be .*N=10"):
    figures.plot_latent_codes(codes, np.zeros((9, 1)), ["a"])
  with pytest.raises(ValueError, match="label_names"):
    figures.plot_latent_codes(codes, np.zeros((10, 2)), ["a"])
  with pytest.raises(ValueError, match="codes must be"):
    figures.plot_latent_codes(np.zeros(10), np.zeros(10), ["a"])
  with pytest.raises(ValueError, match="categorical"):
    figures.plot_latent_codes(codes, np.zeros(10), ["a"],
                              categorical=[True, False])
  with pytest.raises(ValueError, match="originals must be"):
    figures.plot_reconstructions(np.zeros((2, 3)), np.zeros((2, 3)))
  assert len(plt.get_fignums()) == 0


def test_latent_codes_is_deterministic(tmp_path):
  rng = np.random.default_rng(0)
  codes, labels = rng.normal(size=(7000, 2)), rng.uniform(size=(7000, 1))
  for name in ("a", "b"):
    plt.close(figures.plot_latent_codes(codes, labels, ["c"],
                                        tmp_path / f"{name}.png"))
  assert np.array_equal(mpimg.imread(tmp_path / "a.png"),
                        mpimg.imread(tmp_path / "b.png"))


def test_traversals_single_batched_decode(tmp_path, check_figure,
                                          fake_decoder):
  d, steps, span = 4, 7, 2.0
  base = np.array([0.5, -1.0, 0.0, 2.0])
  scales = np.array([1.0, 0.5, 2.0, 0.1])
  dec = fake_decoder()
  out = tmp_path / "trav.png"
  check_figure(
      figures.plot_traversals(
          dec, base, str(out), span=span, steps=steps, scales=scales
      ),
      out,
  )
  assert len(dec.calls) == 1
  codes = dec.calls[0]
  assert codes.shape == (d * steps, d) and codes.dtype == np.float32
  for dim in range(d):
    block = codes[dim * steps : (dim + 1) * steps]
    others = np.delete(block, dim, axis=1)
    np.testing.assert_allclose(
        others, np.broadcast_to(np.delete(base, dim), others.shape), rtol=1e-6
    )
    np.testing.assert_allclose(
        block[:, dim],
        np.linspace(
            base[dim] - span * scales[dim],
            base[dim] + span * scales[dim],
            steps,
        ),
        rtol=1e-6,
    )


def test_traversals_max_dims_and_default_scale(tmp_path, check_figure,
                                               fake_decoder):
  dec = fake_decoder()
  out = tmp_path / "trav_default.png"
  check_figure(
      figures.plot_traversals(dec, np.zeros(12), str(out), max_dims=3), out
  )
  assert len(dec.calls) == 1 and dec.calls[0].shape == (3 * 9, 12)
  np.testing.assert_allclose(
      dec.calls[0][:9, 0], np.linspace(-2.5, 2.5, 9), rtol=1e-6
  )


def test_manifold_grid_single_batched_decode(tmp_path, check_figure,
                                             fake_decoder):
  base = np.array([0.3, -0.2, 1.0])
  dec = fake_decoder()
  out = tmp_path / "manifold.png"
  steps, span = 5, 1.5
  check_figure(
      figures.plot_manifold_grid(
          dec, (0, 2), base, str(out), span=span, steps=steps
      ),
      out,
  )
  assert len(dec.calls) == 1
  codes = dec.calls[0]
  assert codes.shape == (steps * steps, 3)
  np.testing.assert_allclose(
      codes[:, 1], -0.2, rtol=1e-6
  )  # untouched dim stays at base
  grid = codes.reshape(steps, steps, 3)
  np.testing.assert_allclose(
      grid[0, :, 0], np.linspace(0.3 - span, 0.3 + span, steps), rtol=1e-6
  )
  np.testing.assert_allclose(
      grid[:, 0, 2], np.linspace(1.0 + span, 1.0 - span, steps), rtol=1e-6
  )
  with pytest.raises(ValueError):
    figures.plot_manifold_grid(dec, (1, 1), base, str(tmp_path / "bad.png"))


def test_reconstruction_error_histogram(tmp_path, check_figure):
  errors = np.random.default_rng(0).gamma(4.0, 0.1, size=500)
  errors[3] = np.nan  # ignored, not fatal
  out = tmp_path / "errors.png"
  check_figure(figures.plot_reconstruction_errors(errors, out), out)
  with pytest.raises(ValueError, match="finite"):
    figures.plot_reconstruction_errors(np.array([np.nan]), tmp_path / "x.png")


def test_prototype_groups_and_figure(tmp_path, check_figure):
  codes = np.array([[0.0, 1.0], [2.0, 3.0], [10.0, 10.0], [12.0, 14.0]])
  names, means = group_prototypes(codes, np.array([1, 1, 7, 7]), True)
  assert names == ["1", "7"]
  np.testing.assert_allclose(means, [[1.0, 2.0], [11.0, 12.0]])
  values = np.linspace(0.0, 1.0, 400)
  codes = np.stack([values, -values], axis=1)
  names, means = group_prototypes(codes, values, False, num_bins=4)
  assert len(names) == 4
  np.testing.assert_allclose(means[:, 0], [0.125, 0.375, 0.625, 0.875],
                             atol=0.01)  # bin means of a uniform grid
  decoded = _gauss_images(4)
  out = tmp_path / "prototypes.png"
  check_figure(figures.plot_prototypes(
      [("corr", names, means, decoded), ("digit", ["1", "7"],
                                         means[:2], decoded[:2])], out), out)
