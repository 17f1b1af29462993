"""The Keras VAE-vs-AE heatmap notebook's synthetic 36x36 density heatmaps.

Each image is a zero-mean bivariate density (Gaussian, or Student-t for the
``heatmaps_t`` variant) evaluated on ``np.mgrid[-3:3:.17, -3:3:.17]`` and
divided by its maximum.  The covariance is parametrised by two variances and
a correlation taken from the notebook's grids: 25 x 25 x 19 = 11,875 images.

Generation is vectorised over all parameter rows with a closed-form 2x2
inverse/determinant, and the result is cached on disk under a key that hashes
every generating parameter, so a change in any of them can never return a
stale cache file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.special import gammaln

from latent_jax.data.dataset import Dataset, make_dataset

logger = logging.getLogger(__name__)

# Bump when the generation code changes what ends up in the arrays.
FORMAT_VERSION = 1
# (start, stop, step) exactly as in the Keras VAE-vs-AE heatmap notebook.
GRID_SPEC = (-3.0, 3.0, 0.17)
VAR_SPEC = (0.1, 5.0, 0.2)
COR_SPEC = (-0.95, 0.95, 0.1)
# The notebook's rule for the t variant:
# df = 2 where (var_x + var_y)**2 - U(0, 10) > 20.
DF_RULE = {
    "luck_low": 0.0,
    "luck_high": 10.0,
    "threshold": 20.0,
    "df_heavy": 2.0,
    "df_light": 200.0,
}
VARIANTS = ("gaussian", "student_t")
DATASET_NAMES = {"gaussian": "heatmaps", "student_t": "heatmaps_t"}
# Parameter rows per vectorised block: 2048 x 1296 float64 is ~21 MB per
# temporary, which bounds peak memory without measurable speed loss.
_CHUNK = 2048


class HeatmapArrays(NamedTuple):
  """Every heatmap of one variant with its generating parameters."""

  images: np.ndarray  # [11875, 36, 36, 1] float32 in [0, 1]
  # float64 [11875, 3] (var_x, var_y, corr), or [11875, 4] (+ df) for student_t
  labels: np.ndarray


def grid_positions() -> np.ndarray:
  """Evaluation points, ``[36, 36, 2]`` float64.

  ``pos[..., 0]`` is the x grid and ``pos[..., 1]`` the y grid, as the
  notebook's ``np.dstack(np.mgrid[-3:3:.17, -3:3:.17])``.
  """
  start, stop, step = GRID_SPEC
  x, y = np.mgrid[start:stop:step, start:stop:step]
  return np.dstack((x, y))


def parameter_grid() -> np.ndarray:
  """All (var_x, var_y, corr) combinations in the notebook's order, ``[11875, 3]``."""
  var_grid = np.arange(*VAR_SPEC)
  cor_grid = np.arange(*COR_SPEC)
  return np.array(np.meshgrid(var_grid, var_grid, cor_grid)).T.reshape(-1, 3)


def sample_degrees_of_freedom(params: np.ndarray, seed: int) -> np.ndarray:
  """The notebook's stochastic df rule, made reproducible by ``seed``.

  Args:
      params: ``[N, 3]`` rows of (var_x, var_y, corr).
      seed: Seed of ``np.random.default_rng`` drawing the ``U(0, 10)`` noise.

  Returns:
      ``[N]`` float64 array of degrees of freedom, each 2 or 200.
  """
  rng = np.random.default_rng(seed)
  luck = rng.uniform(DF_RULE["luck_low"], DF_RULE["luck_high"], params.shape[0])
  heavy = (params[:, 0] + params[:, 1]) ** 2 - luck > DF_RULE["threshold"]
  return np.where(heavy, DF_RULE["df_heavy"], DF_RULE["df_light"])


def _quadratic_form(
    pos: np.ndarray, params: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Mahalanobis terms for a batch of 2x2 covariances.

  Args:
      pos: ``[H, W, 2]`` points.
      params: ``[B, 3]`` rows of (var_x, var_y, corr).

  Returns:
      ``(maha, log_det)``: ``[B, H, W]`` values of ``z^T S^-1 z`` and ``[B]``
      log-determinants of ``S = [[vx, c*sqrt(vx*vy)], [c*sqrt(vx*vy), vy]]``.
  """
  var_x, var_y, corr = (params[:, i, None, None] for i in range(3))
  cov_xy = corr * np.sqrt(var_x * var_y)
  det = var_x * var_y - cov_xy**2
  x, y = pos[None, ..., 0], pos[None, ..., 1]
  # Closed-form inverse of [[a, b], [b, d]] is [[d, -b], [-b, a]] / det.
  maha = (var_y * x**2 - 2.0 * cov_xy * x * y + var_x * y**2) / det
  return maha, np.log(det[:, 0, 0])


def gaussian_log_density(pos: np.ndarray, params: np.ndarray) -> np.ndarray:
  """Zero-mean bivariate normal log-density, ``[B, H, W]`` for ``[B, 3]`` params."""
  maha, log_det = _quadratic_form(pos, params)
  return -np.log(2.0 * np.pi) - 0.5 * log_det[:, None, None] - 0.5 * maha


def student_t_log_density(
    pos: np.ndarray, params: np.ndarray, df: np.ndarray
) -> np.ndarray:
  """Zero-mean bivariate Student-t log-density with scale matrix from ``params``.

  Args:
      pos: ``[H, W, 2]`` points.
      params: ``[B, 3]`` rows of (var_x, var_y, corr).
      df: ``[B]`` degrees of freedom.

  Returns:
      ``[B, H, W]`` log-densities.
  """
  maha, log_det = _quadratic_form(pos, params)
  dim = 2.0
  log_norm = (
      gammaln((df + dim) / 2.0)
      - gammaln(df / 2.0)
      - (dim / 2.0) * np.log(df * np.pi)
      - 0.5 * log_det
  )
  nu = df[:, None, None]
  return log_norm[:, None, None] - 0.5 * (nu + dim) * np.log1p(maha / nu)


def generate_heatmaps(variant: str, df_seed: int = 0) -> HeatmapArrays:
  """Computes all heatmaps of a variant (no cache).

  Args:
      variant: ``"gaussian"`` or ``"student_t"``.
      df_seed: Seed of the df rule; ignored for ``"gaussian"``.

  Returns:
      :class:`HeatmapArrays` ``(images, labels)``: float32
      ``[11875, 36, 36, 1]`` in ``[0, 1]`` and float64 ``[11875, 3]``
      (var_x, var_y, corr) or ``[11875, 4]`` (+ df).
  """
  if variant not in VARIANTS:
    raise ValueError(
        f"unknown heatmap variant {variant!r}; expected one of {VARIANTS}"
    )
  pos = grid_positions()
  params = parameter_grid()
  labels = params
  if variant == "student_t":
    df = sample_degrees_of_freedom(params, df_seed)
    labels = np.concatenate([params, df[:, None]], axis=1)
  images = np.empty((params.shape[0], *pos.shape[:2], 1), np.float32)
  for start in range(0, params.shape[0], _CHUNK):
    block = slice(start, start + _CHUNK)
    if variant == "gaussian":
      log_p = gaussian_log_density(pos, params[block])
    else:
      log_p = student_t_log_density(pos, params[block], df[block])
    # density / max(density) == exp(log_p - max log_p): the constant
    # cancels and the subtraction avoids overflow for tiny variances.
    log_p -= log_p.max(axis=(1, 2), keepdims=True)
    images[block, ..., 0] = np.exp(log_p)
  return HeatmapArrays(images, labels)


def cache_spec(variant: str, df_seed: int = 0) -> dict:
  """Every parameter that determines the generated arrays (JSON-serialisable)."""
  spec = {
      "format_version": FORMAT_VERSION,
      "variant": variant,
      "grid": list(GRID_SPEC),
      "var_grid": list(VAR_SPEC),
      "cor_grid": list(COR_SPEC),
  }
  if variant == "student_t":
    spec["df_seed"] = int(df_seed)
    spec["df_rule"] = dict(DF_RULE)
  return spec


def cache_key(variant: str, df_seed: int = 0) -> str:
  """Content key: sha256 of the canonical JSON of :func:`cache_spec`."""
  blob = json.dumps(cache_spec(variant, df_seed), sort_keys=True)
  return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def default_cache_dir() -> Path:
  """``$LATENT_JAX_CACHE`` if set, else ``~/.cache/latent_jax``."""
  return Path(
      os.environ.get("LATENT_JAX_CACHE")
      or Path.home() / ".cache" / "latent_jax"
  )


def _read_cache(path: Path, spec_json: str) -> HeatmapArrays | None:
  """Returns cached arrays, or ``None`` if the file is missing or unusable."""
  if not path.exists():
    return None
  try:
    with np.load(path, allow_pickle=False) as archive:
      stored_spec = str(archive["spec"])
      images, labels = archive["images"], archive["labels"]
    # The spec inside the file guards against a renamed or foreign file.
    if (
        stored_spec != spec_json
        or images.dtype != np.float32
        or images.shape[0] != labels.shape[0]
    ):
      raise ValueError("cache content does not match its key")
    return HeatmapArrays(images, labels)
  except Exception as error:  # noqa: BLE001 - any unreadable file is regenerated
    logger.warning(
        "Ignoring unusable heatmap cache %s (%s); regenerating.", path, error
    )
    return None


def _write_cache(
    path: Path, images: np.ndarray, labels: np.ndarray, spec_json: str
) -> None:
  """Writes atomically: a crash or a concurrent reader never sees half a file."""
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp_name = tempfile.mkstemp(
      dir=path.parent, prefix=path.name, suffix=".tmp"
  )
  try:
    with os.fdopen(fd, "wb") as handle:
      # Uncompressed (~62 MB): loading then does no decompression work.
      np.savez(handle, images=images, labels=labels, spec=np.array(spec_json))
    # mkstemp creates 0600 files; the cache may be shared between users.
    os.chmod(tmp_name, 0o644)
    os.replace(tmp_name, path)
  except BaseException:
    Path(tmp_name).unlink(missing_ok=True)
    raise


def load_heatmap_arrays(
    variant: str, df_seed: int = 0, cache_dir: str | os.PathLike | None = None
) -> HeatmapArrays:
  """Cached :func:`generate_heatmaps`.

  Args:
      variant: ``"gaussian"`` or ``"student_t"``.
      df_seed: Seed of the df rule (part of the key only for ``"student_t"``).
      cache_dir: Cache folder; defaults to :func:`default_cache_dir`.

  Returns:
      ``(images, labels)`` as in :func:`generate_heatmaps`.
  """
  if variant not in VARIANTS:
    raise ValueError(
        f"unknown heatmap variant {variant!r}; expected one of {VARIANTS}"
    )
  spec_json = json.dumps(cache_spec(variant, df_seed), sort_keys=True)
  path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
  path = path / f"heatmaps_{cache_key(variant, df_seed)}.npz"
  cached = _read_cache(path, spec_json)
  if cached is not None:
    return cached
  images, labels = generate_heatmaps(variant, df_seed)
  _write_cache(path, images, labels, spec_json)
  return HeatmapArrays(images, labels)


def load_heatmaps(
    *,
    seed: int,
    test_fraction: float = 0.2,
    cache_dir: str | None = None,
    split: str = "random",
) -> Dataset:
  """``heatmaps``: Gaussian heatmaps labelled (var_x, var_y, corr), split by ``seed``.

  ``split="keras_notebook"`` uses the Keras VAE-vs-AE heatmap notebook's own
  split instead (see
  :func:`~latent_jax.data.dataset.train_test_split_indices`).
  """
  images, labels = load_heatmap_arrays("gaussian", cache_dir=cache_dir)
  return make_dataset(
      DATASET_NAMES["gaussian"],
      images,
      labels,
      ("var_x", "var_y", "corr"),
      (False, False, False),
      seed=seed,
      test_fraction=test_fraction,
      split=split,
  )


def load_heatmaps_t(
    *,
    seed: int,
    test_fraction: float = 0.2,
    cache_dir: str | None = None,
    df_seed: int | None = None,
    split: str = "random",
) -> Dataset:
  """``heatmaps_t``: Student-t heatmaps labelled (var_x, var_y, corr, df).

  ``df_seed`` (default: ``seed``) draws the df rule; pass a fixed value to
  keep the same images across split seeds.
  """
  df_seed = seed if df_seed is None else df_seed
  images, labels = load_heatmap_arrays(
      "student_t", df_seed=df_seed, cache_dir=cache_dir
  )
  return make_dataset(
      DATASET_NAMES["student_t"],
      images,
      labels,
      ("var_x", "var_y", "corr", "df"),
      (False, False, False, True),
      seed=seed,
      test_fraction=test_fraction,
      split=split,
  )
