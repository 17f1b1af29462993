"""``image_folder``: a folder of image files, one sub-folder per class.

``--config.data.name=image_folder --config.data.path=DIR``, laid out as
torchvision's ``ImageFolder``: ``DIR/<class>/<file>`` (class ids follow the
sorted sub-folder names); a folder without sub-folders is one class. Files
are read with Pillow, converted to ``data.color`` (``grayscale`` or ``rgb``;
``None``: grayscale when every file is, else rgb) and resized to
``data.image_size`` (``None``: every file must have the same size). The
decoded uint8 array is cached once as an uncompressed ``.npz`` keyed by the
folder, each file's name, size and mtime and these settings, so a changed
file or setting rebuilds it and a rerun maps it without decoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from latent_jax.data.arrays import FileArrays
from latent_jax.data.dataset import (
    Dataset,
    make_presplit_dataset,
    train_test_split_indices,
)
from latent_jax.data.heatmaps import default_cache_dir
from latent_jax.data.pixels import (
    channels_of,
    gather_float32,
    image_hw,
    resize_and_convert,
)

NAME = "image_folder"
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
_CACHE_VERSION = 1


def list_images(folder: str) -> tuple[list[tuple[str, int]], list[str]]:
  """``([(relative file path, class id)], class names)``, sorted."""
  from PIL import Image

  if not os.path.isdir(folder):
    raise ValueError(f"{NAME}: {folder}: no such folder; set "
                     "--config.data.path to a folder of images")
  extensions = {ext.lower() for ext in Image.registered_extensions()}

  def images_in(sub: str) -> list[str]:
    names = sorted(os.listdir(os.path.join(folder, sub)))
    return [os.path.join(sub, n) for n in names
            if os.path.splitext(n)[1].lower() in extensions
            and os.path.isfile(os.path.join(folder, sub, n))]

  classes = [d for d in sorted(os.listdir(folder))
             if os.path.isdir(os.path.join(folder, d)) and images_in(d)]
  if not classes:
    files = [(f, 0) for f in images_in("")]
    classes = ["."]
  else:
    files = [(f, i) for i, c in enumerate(classes) for f in images_in(c)]
  if not files:
    raise ValueError(f"{NAME}: {folder}: no image files found (in it or in "
                     "one sub-folder per class)")
  return files, classes


def _decode(folder: str, files: list[tuple[str, int]], size, color
            ) -> np.ndarray:
  """uint8 ``[N, H, W, C]`` of every file, converted and resized."""
  from PIL import Image

  opened = []
  for name, _ in files:
    try:
      with Image.open(os.path.join(folder, name)) as image:
        image.load()
        opened.append(image.copy())
    except OSError as error:
      raise ValueError(f"{NAME}: {folder}: cannot read {name} ({error}); "
                       "remove it or replace it with a valid image") from None
  if color is None:
    color = ("grayscale" if all(i.mode in _GRAY_MODES for i in opened)
             else "rgb")
  channels = channels_of(color, NAME)
  if size is None:
    sizes = {i.size for i in opened}
    if len(sizes) > 1:
      by_size = {}
      for (name, _), image in zip(files, opened):
        by_size.setdefault(image.size, name)
      examples = ", ".join(f"{n} is {w}x{h}"
                           for (w, h), n in list(by_size.items())[:3])
      raise ValueError(f"{NAME}: {folder}: images of mixed sizes ({examples}"
                       "); set --config.data.image_size=N (or (H, W)) to "
                       "resize them all")
    width, height = sizes.pop()
    size = (height, width)
  out = np.empty((len(opened), *size, channels), np.uint8)
  for i, image in enumerate(opened):
    image = image.convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(image)
    out[i] = resize_and_convert(
        pixels.reshape(1, *pixels.shape[:2], channels), size, channels)[0]
  return out


def _cache_path(folder: str, files, size, color, cache_dir) -> Path:
  stats = [(name, os.stat(os.path.join(folder, name)).st_size,
            os.stat(os.path.join(folder, name)).st_mtime_ns)
           for name, _ in files]
  spec = json.dumps({"version": _CACHE_VERSION,
                     "folder": os.path.abspath(folder), "files": stats,
                     "size": size, "color": color}, sort_keys=True)
  key = hashlib.sha256(spec.encode()).hexdigest()[:20]
  root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
  return root / f"{NAME}_{key}.npz"


def cached_folder_arrays(folder: str, image_size=None, color=None,
                         cache_dir=None) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 images ``[N, H, W, C]``, int64 class ids ``[N]``), via the cache."""
  size = image_hw(image_size, NAME)
  channels_of(color, NAME)  # a bad setting fails before any decoding
  files, _ = list_images(folder)
  path = _cache_path(folder, files, size, color, cache_dir)
  if not path.exists():
    images = _decode(folder, files, size, color)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    # Uncompressed, so a rerun memory-maps it (arrays.FileArrays).
    np.savez(tmp, images=images, labels=np.array([c for _, c in files]))
    os.replace(tmp, path)
  source = FileArrays(path)
  return (source.get("images", "data.path"),
          np.asarray(source.get("labels", "data.path")))


def load_image_folder(
    *,
    seed: int,
    test_fraction: float = 0.2,
    cache_dir: str | None = None,
    path: str | os.PathLike | None = None,
    image_size: int | tuple[int, int] | None = None,
    color: str | None = None,
    split: str = "random",
) -> Dataset:
  """The images under ``path``, split by ``seed``; see the module docstring.

  Returns:
      float32 images ``[N, H, W, C]`` in ``[0, 1]``, labels ``[N, 1]``
      class ids (``label_names=("class",)``).

  Raises:
      ValueError: A missing or empty folder, an unreadable file, mixed sizes
          without ``image_size``, or a bad setting.
  """
  if path is None:
    raise ValueError(f"{NAME}: set --config.data.path to a folder of images")
  folder = os.fspath(path)
  images, labels = cached_folder_arrays(folder, image_size, color, cache_dir)
  try:
    train_idx, test_idx = train_test_split_indices(
        images.shape[0], test_fraction, seed, split)
  except ValueError as error:
    raise ValueError(f"{NAME}: {folder}: {error}") from None
  return make_presplit_dataset(
      NAME,
      (gather_float32(images, train_idx, 255.0), labels[train_idx]),
      (gather_float32(images, test_idx, 255.0), labels[test_idx]),
      ("class",), (True,))
