"""``arrays``: a researcher's own images from an ``.npz`` or ``.npy`` file.

``--config.data.name=arrays --config.data.path=FILE``. Images are
``[N, H, W]``, ``[N, H, W, C]`` or flat ``[N, D]`` with ``data.image_shape``;
uint8 is scaled by 1/255, bool and floats are kept (floats outside [0, 1]
need a Gaussian likelihood). Labels (an ``.npz`` key, ``[N]`` or ``[N, L]``)
are optional: integer or bool columns are class ids, float columns are
continuous; without labels the row index is the one (continuous) label, so
every figure still has a colour. A given test file (``data.test_path``, the
same keys) is the test split; otherwise ``config.seed`` splits the file.

Large files are memory-mapped: a ``.npy``, or an ``.npz`` member stored
uncompressed (``np.savez``), is read in place and only the float32 splits
are allocated; a compressed member (``np.savez_compressed``) is inflated
once, since zip deflate cannot be mapped.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
from collections.abc import Sequence

import numpy as np

from latent_jax.data.dataset import (
    Dataset,
    make_presplit_dataset,
    train_test_split_indices,
)
from latent_jax.data.pixels import gather_float32, unit_scale, with_channel_axis

NAME = "arrays"
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... name/extra lengths


def _fail(path: str, problem: str) -> ValueError:
  return ValueError(f"{NAME}: {path}: {problem}")


def _npz_member(path: str, archive: zipfile.ZipFile, key: str) -> np.ndarray:
  """Member ``key`` of an open ``.npz``: mapped if stored, else inflated."""
  info = archive.getinfo(f"{key}.npy")
  if info.compress_type != zipfile.ZIP_STORED:
    with archive.open(info) as member:
      return np.lib.format.read_array(member, allow_pickle=False)
  with open(path, "rb") as raw:
    raw.seek(info.header_offset)
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(
        raw.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
      raise _fail(path, f"corrupt zip entry for key {key!r}")
    raw.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
    version = np.lib.format.read_magic(raw)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read_header(raw)
    offset = raw.tell()
  if dtype.hasobject:
    raise _fail(path, f"key {key!r} holds Python objects; save numeric arrays")
  if math.prod(shape) == 0:
    return np.zeros(shape, dtype)
  return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset,
                   order="F" if fortran else "C")


class FileArrays:
  """The named arrays of one ``.npz`` / ``.npy`` file, opened lazily."""

  def __init__(self, path: str | os.PathLike):
    self.path = os.fspath(path)
    if not os.path.isfile(self.path):
      raise _fail(self.path, "no such file; set --config.data.path to an "
                  "existing .npz or .npy file")
    if self.path.endswith(".npy"):
      self.keys: tuple[str, ...] = ()
    elif self.path.endswith(".npz"):
      with zipfile.ZipFile(self.path) as archive:
        self.keys = tuple(n[:-4] for n in archive.namelist()
                          if n.endswith(".npy"))
    else:
      raise _fail(self.path, "data.path must end in .npz or .npy")

  def get(self, key: str, field: str) -> np.ndarray:
    """The array under ``key`` (a ``.npy`` file is its one array)."""
    if not self.path.endswith(".npz"):
      return np.load(self.path, mmap_mode="r", allow_pickle=False)
    if key not in self.keys:
      raise _fail(self.path, f"no key {key!r} (from {field}); the file holds "
                  f"{list(self.keys)}: set --config.{field} to one of them")
    with zipfile.ZipFile(self.path) as archive:
      return _npz_member(self.path, archive, key)


def _image_view(images: np.ndarray, image_shape: Sequence[int] | None,
                where: str) -> np.ndarray:
  """``[N, H, W, C]`` view of stored images (flat rows need ``image_shape``)."""
  if images.ndim == 2:
    if image_shape is None:
      raise ValueError(f"{NAME}: {where}: images are flat {images.shape}; set "
                       "--config.data.image_shape=(H, W) or (H, W, C)")
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
      shape += (1,)
    if len(shape) != 3 or math.prod(shape) != images.shape[1]:
      raise ValueError(f"{NAME}: {where}: data.image_shape={tuple(image_shape)}"
                       f" does not hold the {images.shape[1]} values of a row")
    return images.reshape((images.shape[0],) + shape)
  return with_channel_axis(images, f"{NAME}: {where}")


class LabelColumns:
  """Labels as float32 ``[N, L]`` with their names and class flags."""

  def __init__(self, labels: np.ndarray | None, num: int,
               label_names: Sequence[str] | str | None, where: str):
    if labels is None:
      self.values = np.arange(num, dtype=np.float32)[:, None]
      self.names, self.categorical = ("index",), (False,)
      return
    labels = np.asarray(labels)
    if labels.ndim == 1:
      labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[0] != num:
      raise ValueError(
          f"{NAME}: {where}: labels have shape {labels.shape} but there are "
          f"{num} images; labels must be [N] or [N, L] with N = {num} (check "
          "data.labels_key)")
    width = labels.shape[1]
    if isinstance(label_names, str):
      label_names = [n.strip() for n in label_names.split(",") if n.strip()]
    if label_names is None:
      label_names = ["label"] if width == 1 else [f"label_{i}"
                                                  for i in range(width)]
    if len(label_names) != width:
      raise ValueError(f"{NAME}: {where}: data.label_names={list(label_names)}"
                       f" names {len(label_names)} columns; labels have {width}")
    self.names = tuple(label_names)
    is_class = (np.issubdtype(labels.dtype, np.integer)
                or labels.dtype == np.bool_)
    self.categorical = (bool(is_class),) * width
    self.values = labels.astype(np.float32)


def _read_split(source: FileArrays, images_key: str, labels_key: str,
                labels_required: bool, image_shape) -> tuple:
  images = _image_view(source.get(images_key, "data.images_key"), image_shape,
                       source.path)
  labels = None
  if source.keys and (labels_key in source.keys or labels_required):
    labels = source.get(labels_key, "data.labels_key")
  return images, labels


def load_arrays(
    *,
    seed: int,
    test_fraction: float = 0.2,
    cache_dir: str | None = None,
    path: str | os.PathLike | None = None,
    images_key: str = "images",
    labels_key: str | None = None,
    label_names: Sequence[str] | str | None = None,
    image_shape: Sequence[int] | None = None,
    test_path: str | os.PathLike | None = None,
    split: str = "random",
) -> Dataset:
  """Images (and labels) from ``path``; see the module docstring.

  Args:
      seed: Seed of the train/test split when there is no ``test_path``.
      test_fraction: Test share of that split.
      cache_dir: Unused (the file is read in place).
      path: The ``.npz`` or ``.npy`` file.
      images_key: ``.npz`` key of the images.
      labels_key: ``.npz`` key of the labels; ``None``: ``"labels"`` if the
          file has it, else no labels.
      label_names: Names of the label columns (a list or ``"a,b"``).
      image_shape: ``(H, W)`` or ``(H, W, C)`` of flat ``[N, D]`` images.
      test_path: A second file with the same keys: the test split.
      split: ``"random"`` or ``"keras_notebook"``, see
          :func:`~latent_jax.data.dataset.train_test_split_indices`.

  Returns:
      float32 images ``[N, H, W, C]``, labels ``[N, L]``.

  Raises:
      ValueError: A missing file or key, a bad shape, NaN/Inf, or labels
          whose length differs from the images'.
  """
  del cache_dir
  if path is None:
    raise ValueError(f"{NAME}: set --config.data.path to an .npz or .npy file")
  labels_required = labels_key is not None
  labels_key = labels_key or "labels"
  source = FileArrays(path)
  images, labels = _read_split(source, images_key, labels_key,
                               labels_required, image_shape)
  divisor = unit_scale(images.dtype, f"{NAME}: {source.path}")
  columns = LabelColumns(labels, images.shape[0], label_names, source.path)
  if test_path is not None:
    test = FileArrays(test_path)
    test_images, test_labels = _read_split(test, images_key, labels_key,
                                           labels is not None, image_shape)
    test_columns = LabelColumns(test_labels, test_images.shape[0],
                                label_names, test.path)
    train_arrays = (gather_float32(images, None, divisor), columns.values)
    test_arrays = (gather_float32(test_images, None,
                                  unit_scale(test_images.dtype, test.path)),
                   test_columns.values)
  else:
    try:
      train_idx, test_idx = train_test_split_indices(
          images.shape[0], test_fraction, seed, split)
    except ValueError as error:
      raise ValueError(f"{NAME}: {source.path}: {error}") from None
    train_arrays = (gather_float32(images, train_idx, divisor),
                    columns.values[train_idx])
    test_arrays = (gather_float32(images, test_idx, divisor),
                   columns.values[test_idx])
  low = min(float(train_arrays[0].min()), float(test_arrays[0].min()))
  high = max(float(train_arrays[0].max()), float(test_arrays[0].max()))
  if not (math.isfinite(low) and math.isfinite(high)):
    raise ValueError(f"{NAME}: {source.path}: images contain NaN or Inf "
                     "values; remove or replace them")
  return make_presplit_dataset(
      NAME, train_arrays, test_arrays, columns.names, columns.categorical,
      likelihood="bernoulli" if 0.0 <= low and high <= 1.0 else "gaussian",
      unit_range=False)
