"""The latent explorer: sliders -> decode(code) -> the image shown; and the
runs layer's explorer of a workdir, which refuses a run with no checkpoint."""

import io
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ipywidgets")

from latent_jax import losses  # noqa: E402
from latent_jax.evaluation.explorer import (code_ranges,  # noqa: E402
                                            latent_explorer)
from latent_jax.runs import vae as vae_runs  # noqa: E402
from latent_jax.train import workdir as workdir_lib  # noqa: E402
from experiments.configs import vae_digits  # noqa: E402


def _shown(explorer):
  """The PNG the image widget holds, as an [h, w, 3] uint8 array."""
  return np.asarray(Image.open(io.BytesIO(explorer.widget.children[1].value))
                    .convert("RGB"))


def test_moving_a_slider_shows_decode_of_the_sliders_code(fake_decoder):
  decode = fake_decoder(6)
  explorer = latent_explorer(decode, 3, ranges=[[-1, 1], [0, 2], [-4, -2]])
  np.testing.assert_allclose(explorer.code, [0, 1, -3])  # range middles
  before = _shown(explorer)
  explorer.sliders[0].value = 0.8
  explorer.sliders[2].value = -2.5
  np.testing.assert_allclose(decode.calls[-1], [[0.8, 1.0, -2.5]], atol=1e-6)
  np.testing.assert_allclose(explorer.image,
                             decode(np.array([[0.8, 1.0, -2.5]]))[0],
                             atol=1e-6)
  assert not np.array_equal(_shown(explorer), before)  # redrawn


def test_flat_decoder_outputs_take_the_image_shape():
  weights = np.random.default_rng(0).random((2, 12))

  def decode(codes):  # [M, 2] -> [M, 12], e.g. an inverse_transform
    return 1 / (1 + np.exp(-codes @ weights))

  explorer = latent_explorer(decode, 2, image_shape=(4, 3))
  explorer.sliders[1].value = 2.0
  np.testing.assert_allclose(explorer.image[..., 0],
                             decode(np.array([[0.0, 2.0]])).reshape(4, 3),
                             atol=1e-6)
  with pytest.raises(ValueError, match="image_shape"):
    latent_explorer(decode, 2, image_shape=(5, 3))


def test_code_ranges_span_three_standard_deviations():
  codes = np.random.default_rng(0).normal([1.0, -2.0, 0.0], [0.5, 2.0, 0.0],
                                          size=(4000, 3))
  ranges = code_ranges(codes)
  np.testing.assert_allclose(ranges[:2, 0], [1 - 1.5, -2 - 6], atol=0.2)
  np.testing.assert_allclose(ranges[:2, 1], [1 + 1.5, -2 + 6], atol=0.2)
  assert ranges[2, 0] < 0 < ranges[2, 1]  # a collapsed dim still moves
  inside = (codes[:, :2] >= ranges[:2, 0]) & (codes[:, :2] <= ranges[:2, 1])
  assert inside.mean() > 0.99


def test_bad_ranges_and_a_missing_ipywidgets_are_named(fake_decoder,
                                                       monkeypatch):
  with pytest.raises(ValueError, match=r"ranges must be \[latent_dim, 2\]"):
    latent_explorer(fake_decoder(), 3, ranges=[[-1, 1]] * 2)
  with pytest.raises(ValueError, match="low < high"):
    latent_explorer(fake_decoder(), 1, ranges=[[1, -1]])
  monkeypatch.setitem(sys.modules, "ipywidgets", None)
  with pytest.raises(ImportError, match=r"\[notebook\] extra"):
    latent_explorer(fake_decoder(), 2)


def test_run_explorer_decodes_the_restored_model(vae_digits_run):
  explorer = vae_runs.run_explorer(vae_digits_run)
  model = vae_runs.restore_run(vae_digits_run).model
  assert len(explorer.sliders) == model.latent_dim == 2
  explorer.sliders[0].value = explorer.sliders[0].max
  expected = losses.decoder_mean("bernoulli",
                                 model.decode(explorer.code[None]))
  np.testing.assert_allclose(explorer.image, np.asarray(expected)[0],
                             atol=1e-5)


def test_run_explorer_refuses_a_run_without_checkpoint(smoke_config,
                                                       tmp_path):
  with pytest.raises(ValueError, match=f"Cannot explore {tmp_path}"):
    vae_runs.run_explorer(str(tmp_path))  # no config.json
  workdir_lib.start_run(smoke_config(vae_digits), str(tmp_path))
  with pytest.raises(ValueError,
                     match=f"Cannot explore {tmp_path}: No checkpoint"):
    vae_runs.run_explorer(str(tmp_path))
