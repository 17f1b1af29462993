"""MNIST and Fashion-MNIST through tensorflow-datasets, without TensorFlow when possible.

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

import importlib.util
import os
import socket
import threading
from collections.abc import Sequence
from urllib.parse import urlparse

import numpy as np

from latent_jax.data.dataset import Dataset, make_presplit_dataset

OFFLINE_DATASETS = ("heatmaps", "heatmaps_t", "digits")
_LABEL_NAMES = {"mnist": ("digit",), "fashion_mnist": ("class",)}
_NUM_CLASSES = 10
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


def _read_split(
    builder,
    split: str,
    classes: Sequence[int] | None,
    max_count: int | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
  """Reads the kept examples of one split: uint8 ``[n, 28, 28, 1]`` and int64 ``[n]``."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core import file_adapters

  formats = builder.info.available_file_formats()
  if formats & file_adapters.FileFormat.with_random_access():
    # Parse labels for all records but keep images as PNG bytes: decoding
    # is the expensive part, so only the kept examples are decoded.
    source = builder.as_data_source(
        split=split, decoders={"image": tfds.decode.SkipDecoding()}
    )
    # __getitems__ reads records in one batched call instead of N lookups.
    examples = source.__getitems__(range(len(source)))
    labels = np.array([example["label"] for example in examples], np.int64)
    keep = _select(labels, classes, max_count, rng)
    decode = builder.info.features["image"].decode_example_np
    shape = builder.info.features["image"].shape
    images = (
        np.stack([decode(examples[i]["image"]) for i in keep])
        if keep.size
        else np.zeros((0, *shape), np.uint8)
    )
    return images, labels[keep]
  if importlib.util.find_spec("tensorflow") is None:
    raise DatasetUnavailableError(
        f"{builder.name}: data in {builder.data_dir} is stored as "
        f"{sorted(f.value for f in formats)}, which needs TensorFlow to read "
        "(`pip install tensorflow-cpu`), or re-prepare it with file_format=array_record"
    )
  arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
  labels = np.asarray(arrays["label"], np.int64)
  keep = _select(labels, classes, max_count, rng)
  return np.asarray(arrays["image"])[keep], labels[keep]


def _select(
    labels: np.ndarray,
    classes: Sequence[int] | None,
    max_count: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
  """Sorted indices kept after the class filter and the optional subsample."""
  keep = np.arange(labels.shape[0])
  if classes is not None:
    keep = keep[np.isin(labels, np.asarray(classes))]
  if max_count is not None and max_count < keep.shape[0]:
    keep = np.sort(rng.choice(keep, size=max_count, replace=False))
  return keep


def _check_options(
    name: str,
    classes: Sequence[int] | None,
    max_train: int | None,
    max_test: int | None,
) -> None:
  if classes is not None:
    classes = list(classes)
    if not classes or any(
        int(c) != c or not 0 <= c < _NUM_CLASSES for c in classes
    ):
      raise ValueError(
          f"{name}: classes must be a non-empty list of ids in 0..9, got {classes}"
      )
  for option, value in (("max_train", max_train), ("max_test", max_test)):
    if value is not None and (int(value) != value or value < 1):
      raise ValueError(
          f"{name}: {option} must be a positive integer, got {value}"
      )


def load_tfds_images(
    name: str,
    *,
    seed: int,
    data_dir: str | os.PathLike | None = None,
    classes: Sequence[int] | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    download: bool = True,
) -> Dataset:
  """Loads a 28x28 grayscale tfds dataset with its official train/test split.

  Args:
      name: ``"mnist"`` or ``"fashion_mnist"``.
      seed: Seed of the ``max_train``/``max_test`` subsamples.
      data_dir: tfds data folder (default: ``$TFDS_DATA_DIR`` or
          ``~/tensorflow_datasets``).
      classes: Keep only these class ids (labels are not renumbered).
      max_train: Keep at most this many training examples.
      max_test: Keep at most this many test examples.
      download: Try to download and prepare the data if it is missing.

  Returns:
      Images float32 ``[N, 28, 28, 1]`` in ``[0, 1]``, labels float32
      ``[N, 1]`` class ids.

  Raises:
      DatasetUnavailableError: The data is missing and cannot be prepared.
      ValueError: Invalid options.
  """
  if name not in _LABEL_NAMES:
    raise ValueError(
        f"unsupported tfds dataset {name!r}; expected one of {sorted(_LABEL_NAMES)}"
    )
  _check_options(name, classes, max_train, max_test)
  import tensorflow_datasets as tfds

  data_dir = resolve_data_dir(data_dir)
  # array_record is the random-access format that reads without TensorFlow.
  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  if not builder.is_prepared():
    if not download:
      raise _unavailable(
          name,
          data_dir,
          os.fspath(builder.data_dir),
          "the data is not prepared and download=False",
      )
    _prepare(builder, name, data_dir)
  rng = np.random.default_rng(seed)
  splits = []
  for split, max_count in (("train", max_train), ("test", max_test)):
    images, labels = _read_split(builder, split, classes, max_count, rng)
    if images.shape[0] == 0 and classes is not None:
      raise ValueError(
          f"{name}: no {split} examples of classes {list(classes)}"
      )
    splits.append((images.astype(np.float32) / 255.0, labels))
  return make_presplit_dataset(
      name, splits[0], splits[1], _LABEL_NAMES[name], (True,)
  )


def _official_split_loader(name: str):
  """Registry loader for ``name``; explicit keywords so unknown options are caught."""

  def load(
      *,
      seed: int,
      test_fraction: float = 0.2,
      cache_dir: str | None = None,
      data_dir: str | os.PathLike | None = None,
      classes: Sequence[int] | None = None,
      max_train: int | None = None,
      max_test: int | None = None,
      download: bool = True,
  ) -> Dataset:
    # The official split is used, so test_fraction does not apply, and tfds
    # keeps its own cache in data_dir rather than cache_dir.
    del test_fraction, cache_dir
    return load_tfds_images(
        name,
        seed=seed,
        data_dir=data_dir,
        classes=classes,
        max_train=max_train,
        max_test=max_test,
        download=download,
    )

  load.__name__ = f"load_{name}"
  load.__doc__ = f"``{name}`` with its official split; options as in :func:`load_tfds_images`."
  return load


load_mnist = _official_split_loader("mnist")
load_fashion_mnist = _official_split_loader("fashion_mnist")
