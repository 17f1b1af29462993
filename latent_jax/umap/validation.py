"""Checks of a Parametric UMAP's settings and inputs: one clear error each.

Every message names the keyword or array that was wrong and what to do.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse

from latent_jax import losses
from latent_jax.umap import plan as plan_lib

POSITIVE_INTS = ("n_components", "n_neighbors", "batch_size",
                 "init_batch_size", "negative_sample_rate", "steps_per_call")


def _is_int(value) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_hyperparameters(hp: Mapping[str, Any]) -> None:
  """Raises ValueError naming the first invalid keyword."""
  if not _is_int(hp["pca_components"]) or hp["pca_components"] < 0:
    raise ValueError(f"pca_components must be an integer >= 0 (0: no "
                     f"projection), got {hp['pca_components']!r}.")
  for name in POSITIVE_INTS:
    if not _is_int(hp[name]) or hp[name] < 1:
      raise ValueError(f"{name} must be a positive integer, got "
                       f"{hp[name]!r}.")
  if hp["n_neighbors"] < 2:
    raise ValueError(f"n_neighbors must be >= 2, got {hp['n_neighbors']}.")
  if hp["n_epochs"] is not None and (not _is_int(hp["n_epochs"])
                                     or hp["n_epochs"] < 1):
    raise ValueError(f"n_epochs must be a positive integer or None, got "
                     f"{hp['n_epochs']!r}.")
  if hp["learning_rate"] is not None and not hp["learning_rate"] > 0:
    raise ValueError(f"learning_rate must be > 0 or None (chosen from the "
                     f"encoder's input), got {hp['learning_rate']}.")
  if not 0.0 <= hp["neighbor_mixing"] <= 1.0:
    raise ValueError(f"neighbor_mixing must be in [0, 1] (a fraction of "
                     f"the way to a neighbour), got {hp['neighbor_mixing']}.")
  if not 0.0 <= hp["input_noise"] < float("inf"):
    raise ValueError(f"input_noise must be a finite number >= 0 (a "
                     f"fraction of the data's feature std; 0: off), got "
                     f"{hp['input_noise']}.")
  if hp["reconstruction_loss"] not in ("auto", *losses.LIKELIHOODS):
    raise ValueError(f"reconstruction_loss must be 'auto' or one of "
                     f"{losses.LIKELIHOODS}, got "
                     f"{hp['reconstruction_loss']!r}.")
  plan_lib.preset(hp)


def check_inputs(data, hp: Mapping[str, Any], what: str = "X") -> np.ndarray:
  """float32 array [N, D] or [N, H, W, C] ([N, H, W] gains a channel)."""
  if scipy.sparse.issparse(data):
    raise ValueError(f"{what} is a sparse matrix: pass a dense array "
                     "(e.g. X.toarray()).")
  try:
    array = np.asarray(data, dtype=np.float32)
  except (TypeError, ValueError) as error:
    raise ValueError(f"{what} must be a numeric array: {error}") from None
  if array.ndim == 3:  # [N, H, W] grey images
    array = array[..., None]
  if array.ndim not in (2, 4):
    raise ValueError(
        f"{what} must be a 2-D array [n_samples, n_features] or images "
        f"[n_samples, height, width(, channels)]; got shape {array.shape}.")
  if array.shape[0] == 0 or array[0].size == 0:
    raise ValueError(f"{what} is empty (shape {array.shape}).")
  bad = ~np.isfinite(array)
  if bad.any():
    rows = np.unique(np.nonzero(bad.reshape(len(array), -1))[0])
    raise ValueError(
        f"{what} contains NaN or Inf values in {len(rows)} row(s) (first: "
        f"{rows[:5].tolist()}); impute or drop them before fitting.")
  if plan_lib.family(hp) == "conv" and array.ndim != 4:
    raise ValueError(f"encoder={hp['encoder']!r} is convolutional and needs "
                     f"images [N, H, W(, C)]; {what} has shape "
                     f"{array.shape}. Reshape it, or use encoder='mlp'.")
  return array


def check_features(array: np.ndarray, input_shape: tuple[int, ...],
                   method: str) -> None:
  """The per-sample shape must be the fitted one."""
  if array.shape[1:] != tuple(input_shape):
    raise ValueError(
        f"{method}() got inputs of shape {array.shape[1:]} per sample, but "
        f"the model was fitted on {tuple(input_shape)}.")


def check_points(embedding, n_components: int) -> np.ndarray:
  """float32 [n, n_components] points of the embedding space."""
  points = np.asarray(embedding, np.float32)
  if points.ndim == 1 and points.shape[0] == n_components:
    points = points[None]
  if points.ndim != 2 or points.shape[1] != n_components:
    raise ValueError(
        f"inverse_transform() needs points of shape [n, {n_components}] "
        f"(n_components={n_components}); got {points.shape}.")
  if not np.all(np.isfinite(points)):
    raise ValueError("inverse_transform() got NaN or Inf coordinates.")
  return points
