"""tensorflow-datasets image sets (``tfds:<name>``, ``mnist``, ``fashion_mnist``), without TensorFlow when possible.

What needs what (tensorflow-datasets 4.9.10):

* Reading a dataset already prepared in the ``array_record`` format needs no
  TensorFlow: ``builder.as_data_source`` parses the stored ``tf.train.Example``
  protos with tfds' own protobuf copy and decodes the PNGs with PIL.
* Preparing (downloading + generating) MNIST needs TensorFlow: tfds' MNIST
  builder reads the raw files with ``tf.io.gfile`` and encodes PNGs with
  ``tf.image.encode_png``. It also needs the ``importlib_resources`` package
  (an ``etils[epath]`` dependency not always installed with tfds).
* A dataset prepared in the default ``tfrecord`` format can only be read
  with TensorFlow (``builder.as_dataset``).

Without network access tfds retries each URL for minutes, so before any
download the host is probed with a short socket timeout and the loader fails
within seconds with one message naming the offline datasets.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import os
import socket
import threading
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import urlparse

import numpy as np

from latent_jax.data.dataset import Dataset, make_presplit_dataset
from latent_jax.data.pixels import (
    channels_of,
    gather_float32,
    image_hw,
    resize_and_convert,
)

OFFLINE_DATASETS = ("heatmaps", "heatmaps_t", "digits")
_LABEL_NAMES = {"mnist": ("digit",), "fashion_mnist": ("class",)}
_PROBE_TIMEOUT_S = 3.0
_FALLBACK_URL = "https://storage.googleapis.com/"


class DatasetUnavailableError(RuntimeError):
  """The dataset is neither prepared in ``data_dir`` nor preparable here."""


def resolve_data_dir(data_dir: str | os.PathLike | None) -> str:
  """The folder tfds reads: ``data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
  if data_dir is not None:
    return os.fspath(data_dir)
  # Same rule as tfds.core.constants.get_default_data_dir(), evaluated now
  # rather than at tfds import time so a late os.environ change counts.
  return os.environ.get("TFDS_DATA_DIR") or os.path.join(
      os.path.expanduser("~"), "tensorflow_datasets"
  )


def _unavailable(
    name: str, data_dir: str, variant_dir: str, reason: str
) -> DatasetUnavailableError:
  return DatasetUnavailableError(
      f"{name}: {reason}. tfds looks for prepared data in data_dir={data_dir} "
      f"(this dataset: {variant_dir}); pass data_dir=... or set TFDS_DATA_DIR to use "
      f"a copy prepared elsewhere, e.g. with `tfds build {name} --file_format=array_record "
      f"--data_dir=DIR` on a machine with TensorFlow and internet. Datasets that work "
      f"without any download: {', '.join(OFFLINE_DATASETS)}."
  )


def host_reachable(url: str, timeout: float = _PROBE_TIMEOUT_S) -> bool:
  """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds.

  The probe runs in a daemon thread joined with a deadline because DNS
  resolution ignores socket timeouts and can hang on some networks.
  """
  parsed = urlparse(url)
  port = parsed.port or (443 if parsed.scheme == "https" else 80)
  outcome: list[bool] = []

  def probe() -> None:
    try:
      socket.create_connection((parsed.hostname, port), timeout=timeout).close()
      outcome.append(True)
    except OSError:
      outcome.append(False)

  thread = threading.Thread(target=probe, daemon=True)
  thread.start()
  thread.join(timeout + 1.0)
  return bool(outcome and outcome[0])


def _missing_preparation_packages() -> list[str]:
  """Packages tfds needs to generate MNIST-style data that are not installed."""
  missing = []
  if importlib.util.find_spec("tensorflow") is None:
    missing.append(
        "tensorflow (`pip install tensorflow-cpu`; the tfds builder uses tf.io.gfile and tf.image)"
    )
  if importlib.util.find_spec("importlib_resources") is None:
    missing.append(
        "importlib_resources (`pip install importlib_resources`; needed by etils.epath)"
    )
  return missing


def _prepare(builder, name: str, data_dir: str) -> None:
  """Downloads and generates ``builder``'s data as array_record, or fails fast."""
  variant_dir = os.fspath(builder.data_dir)
  url = getattr(builder, "URL", None) or _FALLBACK_URL
  missing = _missing_preparation_packages()
  if not host_reachable(url):
    # Mention missing packages too, so that fixing the network alone is
    # not followed by a second, different failure.
    also = (
        f" (with internet, tfds would also need {' and '.join(missing)})"
        if missing
        else ""
    )
    raise _unavailable(
        name,
        data_dir,
        variant_dir,
        f"the download failed: {urlparse(url).hostname} is unreachable (no internet?){also}",
    )
  if missing:
    raise _unavailable(
        name,
        data_dir,
        variant_dir,
        "the data is not prepared and tfds cannot generate it without "
        + " and ".join(missing),
    )
  try:
    builder.download_and_prepare()
  except Exception as error:  # noqa: BLE001 - one clear message for any tfds failure
    raise _unavailable(
        name, data_dir, variant_dir, f"the download failed ({error!r})"
    ) from error


class FeatureKeys(NamedTuple):
  """Which top-level features of a tfds builder are the image and the label."""

  image: str        # an Image feature, [H, W, C] uint8
  label: str | None  # a ClassLabel feature; None: the dataset has none


def feature_keys(name: str, features) -> FeatureKeys:
  """The image and class-label keys of ``builder.info.features``.

  The rule: the image is the one top-level ``Image`` feature (``"image"``
  when there are several), the label the one top-level ``ClassLabel``
  (``"label"`` when there are several); nested dicts (CelebA's attributes)
  are not labels.

  Raises:
      ValueError: No top-level ``Image`` feature.
  """
  import tensorflow_datasets as tfds

  def pick(kind, preferred):
    keys = [k for k, f in features.items() if isinstance(f, kind)]
    if preferred in keys or not keys:
      return preferred if preferred in keys else None
    return keys[0]

  image = pick(tfds.features.Image, "image")
  if image is None:
    raise ValueError(
        f"tfds:{name} has no image feature (features: {sorted(features)}); "
        "only image datasets can be loaded"
    )
  return FeatureKeys(image, pick(tfds.features.ClassLabel, "label"))


def _read_split(
    builder,
    keys: FeatureKeys,
    split: str,
    classes: Sequence[int] | None,
    max_count: int | None,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], np.ndarray | None]:
  """The kept examples of one split: uint8 images ``[h, w, c]`` each, int64 labels ``[n]``."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core import file_adapters

  formats = builder.info.available_file_formats()
  if formats & file_adapters.FileFormat.with_random_access():
    # Parse labels for all records but keep images as PNG bytes: decoding
    # is the expensive part, so only the kept examples are decoded.
    source = builder.as_data_source(
        split=split, decoders={keys.image: tfds.decode.SkipDecoding()}
    )
    # __getitems__ reads records in one batched call instead of N lookups.
    examples = source.__getitems__(range(len(source)))
    labels = (np.array([e[keys.label] for e in examples], np.int64)
              if keys.label else None)
    keep = _select(len(examples), labels, classes, max_count, rng)
    decode = builder.info.features[keys.image].decode_example_np
    images = [decode(examples[i][keys.image]) for i in keep]
    return images, None if labels is None else labels[keep]
  if importlib.util.find_spec("tensorflow") is None:
    raise DatasetUnavailableError(
        f"{builder.name}: data in {builder.data_dir} is stored as "
        f"{sorted(f.value for f in formats)}, which needs TensorFlow to read "
        "(`pip install tensorflow-cpu`), or re-prepare it with file_format=array_record"
    )
  arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
  labels = (np.asarray(arrays[keys.label], np.int64) if keys.label else None)
  stored = arrays[keys.image]
  keep = _select(len(stored), labels, classes, max_count, rng)
  return ([np.asarray(stored[i]) for i in keep],
          None if labels is None else labels[keep])


def _select(
    count: int,
    labels: np.ndarray | None,
    classes: Sequence[int] | None,
    max_count: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
  """Sorted indices kept after the class filter and the optional subsample."""
  keep = np.arange(count)
  if classes is not None:
    keep = keep[np.isin(labels, np.asarray(classes))]
  if max_count is not None and max_count < keep.shape[0]:
    keep = np.sort(rng.choice(keep, size=max_count, replace=False))
  return keep


def _check_options(
    name: str,
    num_classes: int | None,
    classes: Sequence[int] | None,
    max_train: int | None,
    max_test: int | None,
) -> None:
  if classes is not None:
    classes = list(classes)
    if num_classes is None:
      raise ValueError(
          f"{name}: has no class label, so data.classes must be None"
      )
    if not classes or any(
        int(c) != c or not 0 <= c < num_classes for c in classes
    ):
      raise ValueError(
          f"{name}: classes must be a non-empty list of ids in "
          f"0..{num_classes - 1}, got {classes}"
      )
  for option, value in (("max_train", max_train), ("max_test", max_test)):
    if value is not None and (int(value) != value or value < 1):
      raise ValueError(
          f"{name}: {option} must be a positive integer, got {value}"
      )


def _builder(name: str, data_dir: str):
  """tfds' builder of ``name`` (array_record), or a clear unavailable error."""
  try:
    import tensorflow_datasets as tfds
  except ImportError:
    raise DatasetUnavailableError(
        f"tfds:{name}: tensorflow-datasets is not installed; "
        "`pip install \"latent_jax[tfds]\"` (from a checkout: "
        "`pip install -c constraints.txt -e \".[tfds]\"`)"
    ) from None
  try:
    # array_record is the random-access format that reads without TensorFlow.
    return tfds.builder(name, data_dir=data_dir, file_format="array_record")
  except tfds.core.registered.DatasetNotFoundError:
    # list_builders() would import every builder module (and TensorFlow).
    known = tfds.core.registered.list_imported_builders()
    close = difflib.get_close_matches(name, known, n=3)
    raise DatasetUnavailableError(
        f"tfds:{name}: tensorflow-datasets has no dataset {name!r}"
        + (f" (close: {', '.join(close)})" if close else "")
        + "; set --config.data.name=tfds:<name> with a name from "
        "https://www.tensorflow.org/datasets/catalog"
    ) from None


def _to_array(name: str, split: str, images: list[np.ndarray], size,
              channels) -> np.ndarray:
  """uint8 ``[n, H, W, C]`` from per-example images, resized/converted."""
  if not images:
    return np.zeros((0, *(size or (1, 1)), channels or 1), np.uint8)
  if size is None and len({i.shape[:2] for i in images}) > 1:
    raise ValueError(
        f"tfds:{name} ({split}): images of mixed sizes; set "
        "--config.data.image_size=N (or (H, W)) to resize them all"
    )
  converted = [resize_and_convert(i[None], size, channels)[0] for i in images]
  return np.stack(converted)


def load_tfds(
    name: str,
    *,
    seed: int,
    test_fraction: float = 0.2,
    cache_dir: str | None = None,
    data_dir: str | os.PathLike | None = None,
    classes: Sequence[int] | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    download: bool = True,
    image_size: int | Sequence[int] | None = None,
    color: str | None = None,
) -> Dataset:
  """``tfds:<name>`` (and ``mnist``, ``fashion_mnist``) with the official ``train``/``test`` splits.

  Image and label keys come from the builder's features
  (:func:`feature_keys`). uint8 images are scaled by 1/255, except data
  stored as 0/1 (binarized MNIST), kept as is: the rule is the training
  split's maximum (<= 1: binary).

  Args:
      name: A tfds name, e.g. ``"mnist"``, ``"cifar10"``, ``"binarized_mnist"``.
      seed: Seed of the ``max_train``/``max_test`` subsamples.
      test_fraction, cache_dir: Unused: the split is the official one, and
          tfds keeps its own cache in ``data_dir``.
      data_dir: tfds data folder (default: ``$TFDS_DATA_DIR`` or
          ``~/tensorflow_datasets``).
      classes: Keep only these class ids (labels are not renumbered).
      max_train: Keep at most this many training examples.
      max_test: Keep at most this many test examples.
      download: Try to download and prepare the data if it is missing.
      image_size: Resize to this (an int: square; or ``(H, W)``).
      color: ``"grayscale"`` or ``"rgb"`` (``None``: the stored channels).

  Returns:
      Images float32 ``[N, H, W, C]`` in ``[0, 1]``, labels float32
      ``[N, 1]`` class ids (the row index when the dataset has no label).

  Raises:
      DatasetUnavailableError: Unknown name, or data missing and not preparable.
      ValueError: Invalid options.
  """
  del test_fraction, cache_dir
  size = image_hw(image_size, f"tfds:{name}")
  channels = channels_of(color, f"tfds:{name}")
  data_dir = resolve_data_dir(data_dir)
  builder = _builder(name, data_dir)
  keys = feature_keys(name, builder.info.features)
  num_classes = (builder.info.features[keys.label].num_classes
                 if keys.label else None)
  _check_options(name, num_classes, classes, max_train, max_test)
  if not builder.is_prepared():
    if not download:
      raise _unavailable(name, data_dir, os.fspath(builder.data_dir),
                         "the data is not prepared and download=False")
    _prepare(builder, name, data_dir)
  missing = {"train", "test"} - set(builder.info.splits)
  if missing:
    raise ValueError(
        f"tfds:{name} has no {sorted(missing)} split (splits: "
        f"{sorted(builder.info.splits)}); only train/test datasets load here"
    )
  rng = np.random.default_rng(seed)
  raw = {}
  for split, max_count in (("train", max_train), ("test", max_test)):
    images, labels = _read_split(builder, keys, split, classes, max_count, rng)
    if not images and classes is not None:
      raise ValueError(
          f"{name}: no {split} examples of classes {list(classes)}"
      )
    images = _to_array(name, split, images, size, channels)
    if labels is None:  # the row index colours the figures
      labels = np.arange(images.shape[0])
    raw[split] = (images, labels)
  divisor = 1.0 if raw["train"][0].max(initial=0) <= 1 else 255.0
  splits = [(gather_float32(images, None, divisor), labels)
            for images, labels in raw.values()]
  label_names = _LABEL_NAMES.get(name, (keys.label or "index",))
  return make_presplit_dataset(
      name, splits[0], splits[1], label_names, (keys.label is not None,)
  )


load_mnist = functools.partial(load_tfds, "mnist")
load_fashion_mnist = functools.partial(load_tfds, "fashion_mnist")
