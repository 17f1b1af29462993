"""Stored pixels -> the Dataset's float32 images: scaling, resizing, channels.

The one place where a loader's raw images (uint8 ``[N, H, W, C]`` from files,
folders or tfds; bool; floats) become float32 in ``[0, 1]``. The conversion
gathers a split's rows in chunks into one preallocated float32 array, so a
memory-mapped uint8 file is read once and never copied whole in between.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

COLORS = ("grayscale", "rgb")
_CHANNELS = {"grayscale": 1, "rgb": 3}
# Rows per gather: bounds the uint8/float64 temporaries to a few MB.
_CHUNK_ROWS = 4096


def with_channel_axis(images: np.ndarray, name: str) -> np.ndarray:
  """``[N, H, W]`` -> ``[N, H, W, 1]``; ``[N, H, W, C]`` as is (a view)."""
  if images.ndim == 3:
    return images[..., None]
  if images.ndim != 4:
    raise ValueError(
        f"{name}: images must have shape [N, H, W, C] or [N, H, W], got "
        f"shape {images.shape}; give a flat [N, D] array an image shape"
    )
  return images


def unit_scale(dtype: np.dtype, name: str) -> float:
  """The divisor that maps stored values to ``[0, 1]``: 255 for uint8, else 1.

  Raises:
      ValueError: Integer types other than uint8, whose range is not known.
  """
  dtype = np.dtype(dtype)
  if dtype == np.uint8:
    return 255.0
  if dtype == np.bool_ or np.issubdtype(dtype, np.floating):
    return 1.0
  raise ValueError(
      f"{name}: images of dtype {dtype} have no known value range; store "
      "them as uint8 (0..255, scaled to [0, 1]) or as floats"
  )


def gather_float32(images: np.ndarray, indices: np.ndarray | None,
                   divisor: float) -> np.ndarray:
  """``images[indices] / divisor`` as float32, filled chunk by chunk.

  A float32 division (not a multiplication by the reciprocal), so the
  values equal ``images.astype(np.float32) / np.float32(divisor)`` bit for bit.

  Args:
      images: ``[N, ...]``, possibly a read-only memory map.
      indices: ``[M]`` rows to take (``None``: all rows, in order).
      divisor: See :func:`unit_scale`.

  Returns:
      float32 ``[M, ...]``; the only full-size allocation.
  """
  count = images.shape[0] if indices is None else len(indices)
  out = np.empty((count,) + images.shape[1:], np.float32)
  for start in range(0, count, _CHUNK_ROWS):
    stop = min(start + _CHUNK_ROWS, count)
    rows = (images[start:stop] if indices is None
            else images[indices[start:stop]])
    np.divide(rows.astype(np.float32), np.float32(divisor),
              out=out[start:stop])
  return out


def channels_of(color: str | None, name: str) -> int | None:
  """Channel count of a ``color`` setting (``None``: keep the stored ones)."""
  if color is None:
    return None
  if color not in _CHANNELS:
    raise ValueError(
        f"{name}: data.color={color!r} is not one of {COLORS} (or None to "
        "keep the stored channels)"
    )
  return _CHANNELS[color]


def image_hw(image_size: int | Sequence[int] | None, name: str
             ) -> tuple[int, int] | None:
  """``data.image_size`` (an int for square images, or ``(H, W)``) as ``(H, W)``."""
  if image_size is None:
    return None
  size = ((image_size, image_size) if isinstance(image_size, (int, np.integer))
          else tuple(image_size))
  if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
    raise ValueError(
        f"{name}: data.image_size={image_size!r} must be a positive int or "
        "(height, width)"
    )
  return int(size[0]), int(size[1])


def resize_and_convert(images: np.ndarray, size: tuple[int, int] | None,
                       channels: int | None) -> np.ndarray:
  """uint8 ``[N, H, W, C]`` -> uint8 ``[N, h, w, c]`` with Pillow.

  Bilinear resampling with antialiasing (Pillow's ``Image.resize``), and
  ITU-R 601 luma for RGB -> grayscale (Pillow's ``convert("L")``); grayscale
  -> RGB repeats the channel. Returns ``images`` itself when nothing changes.
  """
  from PIL import Image

  stored = images.shape[3]
  target = stored if channels is None else channels
  if stored not in (1, 3) and target != stored:
    raise ValueError(f"cannot convert {stored}-channel images to {target}")
  if (size is None or size == images.shape[1:3]) and target == stored:
    return images
  height, width = size or images.shape[1:3]
  out = np.empty((images.shape[0], height, width, target), np.uint8)
  for i, image in enumerate(images):
    pil = Image.fromarray(image[..., 0] if stored == 1 else image)
    if target != stored:
      pil = pil.convert("L" if target == 1 else "RGB")
    if (height, width) != images.shape[1:3]:
      pil = pil.resize((width, height), Image.BILINEAR)
    pixels = np.asarray(pil)
    out[i] = pixels[..., None] if pixels.ndim == 2 else pixels
  return out
