"""An interactive latent explorer: one slider per latent dimension, the
decoded image redrawn whenever a slider moves.

  explorer = latent_explorer(decode, latent_dim, ranges=code_ranges(codes))
  explorer            # a notebook cell ending with it shows the widget

It takes a decode callable, not a model, so any decoder plugs in (a VAE's,
an AE's, a ParametricUMAP's `inverse_transform` with `image_shape`); the
runs layer builds one from a workdir (`latent_jax.runs.vae.run_explorer`).
Needs ipywidgets: the `[notebook]` extra.
"""

from __future__ import annotations

import io
from typing import Any, Callable, Sequence

import matplotlib
import numpy as np
from PIL import Image

from latent_jax.evaluation.plot_utils import as_images, image_cmap

# Slider ranges span the codes' mean +- SPREAD standard deviations; with no
# codes, the prior N(0, I)'s +- SPREAD.
SPREAD = 3.0
SLIDER_STEPS = 100      # slider positions across each range
DISPLAY_PIXELS = 192    # the shown image's longer side, upscaled by nearest


def _ipywidgets():
  try:
    import ipywidgets  # pylint: disable=g-import-not-at-top  (optional extra)
  except ImportError as error:
    raise ImportError(
        "The latent explorer needs ipywidgets, which is not installed: "
        "install latent_jax's [notebook] extra (pip install "
        "'latent_jax[notebook]') or pip install ipywidgets.") from error
  return ipywidgets


def code_ranges(codes: np.ndarray, spread: float = SPREAD) -> np.ndarray:
  """[D, 2] slider ranges (low, high): each dim's mean +- `spread` std.

  codes: [N, D] latent codes (e.g. the test set's posterior means). A dim
  with no spread (a collapsed unit) gets +- `spread` around its mean, so
  its slider still moves.
  """
  codes = np.asarray(codes, np.float64)
  if codes.ndim != 2 or len(codes) < 1:
    raise ValueError(f"codes must be [N, D] with N >= 1, got shape "
                     f"{codes.shape}.")
  if not spread > 0:
    raise ValueError(f"spread must be > 0 (standard deviations), got "
                     f"{spread}.")
  mean, std = codes.mean(axis=0), codes.std(axis=0)
  half = spread * np.where(std > 0, std, 1.0)
  return np.stack([mean - half, mean + half], axis=1)


def _check_ranges(ranges: Any, latent_dim: int) -> np.ndarray:
  if ranges is None:
    return np.tile([-SPREAD, SPREAD], (latent_dim, 1))
  ranges = np.asarray(ranges, np.float64)
  if ranges.shape != (latent_dim, 2):
    raise ValueError(f"ranges must be [latent_dim, 2] = [{latent_dim}, 2] "
                     f"(low, high) pairs, got shape {ranges.shape}; "
                     "code_ranges(codes) makes them from codes.")
  if not (np.isfinite(ranges).all() and (ranges[:, 0] < ranges[:, 1]).all()):
    raise ValueError(f"ranges must be finite with low < high in every row, "
                     f"got {ranges.tolist()}.")
  return ranges


def _png(image: np.ndarray, cmap: str | None) -> bytes:
  """[H, W, C] in [0, 1] -> PNG bytes, upscaled to DISPLAY_PIXELS."""
  if image.shape[-1] == 1:
    rgb = matplotlib.colormaps[cmap](image[..., 0])[..., :3]
  else:
    rgb = image[..., :3]
  height, width = image.shape[:2]
  scale = max(1, DISPLAY_PIXELS // max(height, width))
  picture = Image.fromarray(np.round(rgb * 255).astype(np.uint8)).resize(
      (width * scale, height * scale), Image.NEAREST)
  buffer = io.BytesIO()
  picture.save(buffer, format="PNG")
  return buffer.getvalue()


class LatentExplorer:
  """Sliders over a latent code and the image it decodes to.

  Attributes:
    widget: the ipywidgets box (sliders beside the image) to display.
    sliders: one FloatSlider per latent dim, in dim order.
    image: [H, W, C] the decoded image now shown, in [0, 1].
  """

  def __init__(self, decode: Callable[[np.ndarray], np.ndarray],
               sliders: Sequence[Any], image_widget: Any, widget: Any,
               image_shape: Sequence[int] | None, cmap: str | None):
    self._decode = decode
    self._image_shape = None if image_shape is None else tuple(image_shape)
    self._image_widget = image_widget
    self.sliders = tuple(sliders)
    self.widget = widget
    self.image = self._decoded()
    self._cmap = cmap or image_cmap(self.image[None])
    self._image_widget.value = _png(self.image, self._cmap)
    for slider in self.sliders:
      slider.observe(self._redraw, names="value")

  @property
  def code(self) -> np.ndarray:
    """[D] float32: the sliders' values."""
    return np.array([slider.value for slider in self.sliders], np.float32)

  def _decoded(self) -> np.ndarray:
    output = np.asarray(self._decode(self.code[None]))
    if self._image_shape is not None:
      if output.size != int(np.prod(self._image_shape)):
        raise ValueError(f"decode returned {output.shape} for one code: "
                         f"cannot reshape it to image_shape="
                         f"{self._image_shape}.")
      output = output.reshape((1,) + self._image_shape)
    images = as_images(output, "decoded images")
    if len(images) != 1:
      raise ValueError(f"decode returned {len(images)} images for one code; "
                       "it must map [M, D] codes to [M, H, W, C] images "
                       "(or [M, H*W*C] with image_shape).")
    return images[0]

  def _redraw(self, change=None) -> None:
    del change
    self.image = self._decoded()
    self._image_widget.value = _png(self.image, self._cmap)

  def _repr_mimebundle_(self, **kwargs):
    return self.widget._repr_mimebundle_(**kwargs)  # pylint: disable=protected-access


def latent_explorer(decode: Callable[[np.ndarray], np.ndarray],
                    latent_dim: int, *, ranges: np.ndarray | None = None,
                    start: np.ndarray | None = None,
                    image_shape: Sequence[int] | None = None,
                    names: Sequence[str] | None = None,
                    cmap: str | None = None) -> LatentExplorer:
  """One slider per latent dim; the image decode(sliders' code) beside them.

  Args:
    decode: [M, D] float32 codes -> [M, H, W, C] images in [0, 1] (a
      decoder mean, not logits); called with M = 1 on every slider move.
    latent_dim: D, the number of sliders.
    ranges: [D, 2] (low, high) per slider; default the prior N(0, I)'s
      +- SPREAD (see `code_ranges` for the codes' own spread).
    start: [D] initial code; default the middle of each range.
    image_shape: (H, W) or (H, W, C) when decode returns flat [M, H*W*C]
      vectors (e.g. a ParametricUMAP's inverse_transform of digits).
    names: slider labels; default z0, z1, ...
    cmap: colour map of single-channel images; default plot_utils'
      `image_cmap` rule.

  Returns:
    The LatentExplorer; display it (or its `.widget`) in a notebook.
  """
  widgets = _ipywidgets()
  if int(latent_dim) != latent_dim or latent_dim < 1:
    raise ValueError(f"latent_dim must be an integer >= 1, got "
                     f"{latent_dim!r}.")
  latent_dim = int(latent_dim)
  ranges = _check_ranges(ranges, latent_dim)
  start = ranges.mean(axis=1) if start is None else np.asarray(
      start, np.float64).reshape(-1)
  if start.shape != (latent_dim,):
    raise ValueError(f"start must be a [{latent_dim}] code, got shape "
                     f"{start.shape}.")
  names = [f"z{i}" for i in range(latent_dim)] if names is None else list(
      names)
  if len(names) != latent_dim:
    raise ValueError(f"names must give {latent_dim} slider labels, got "
                     f"{len(names)}.")
  sliders = [
      widgets.FloatSlider(
          value=float(np.clip(value, low, high)), min=float(low),
          max=float(high), step=float(high - low) / SLIDER_STEPS,
          description=name, continuous_update=True, readout_format=".2f")
      for name, value, (low, high) in zip(names, start, ranges)]
  image_widget = widgets.Image(format="png")
  widget = widgets.HBox([widgets.VBox(sliders), image_widget])
  return LatentExplorer(decode, sliders, image_widget, widget, image_shape,
                        cmap)
