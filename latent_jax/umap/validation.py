"""Checks of a Parametric UMAP's settings and inputs: one clear error each.

Every message names the keyword or array that was wrong and what to do.
`RULES` is the one table of what each constructor keyword accepts: `fit`
checks the estimator's settings against it, and `load` a saved model's.
Arrays go through scikit-learn's `check_array` (shapes, empty inputs,
complex data) and then the checks of our own (images, NaN rows).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
import scipy.sparse
from sklearn.utils import check_array

from latent_jax import losses
from latent_jax.train.chunk import CHUNK_MODES
from latent_jax.umap import graph as graph_lib
from latent_jax.umap import plan as plan_lib

FLOAT_DTYPES = (np.float64, np.float32)  # kept as given; others -> float64


class Rule(NamedTuple):
  """What one keyword accepts."""
  test: Callable[[Any], bool]
  requirement: str  # completes "<keyword> must be ..."


def is_int(value) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value) -> bool:
  return (isinstance(value, (int, float, np.integer, np.floating))
          and not isinstance(value, bool) and math.isfinite(value))


def integer(low: int, high: int | None = None, note: str = "") -> Rule:
  bound = f">= {low}" if high is None else f"in [{low}, {high}]"
  return Rule(lambda v: is_int(v) and v >= low and (high is None
                                                     or v <= high),
              f"an integer {bound}{note}")


def number(low: float, high: float | None = None, *, open_low: bool = False,
            note: str = "") -> Rule:
  above = (lambda v: v > low) if open_low else (lambda v: v >= low)
  bound = (f"{'>' if open_low else '>='} {low}" if high is None
           else f"in [{low}, {high}]")
  return Rule(lambda v: is_real(v) and above(v) and (high is None
                                                      or v <= high),
              f"a finite number {bound}{note}")


def optional(rule: Rule, note: str) -> Rule:
  return Rule(lambda v: v is None or rule.test(v),
              f"{rule.requirement} or None ({note})")


def choice(options: tuple[str, ...]) -> Rule:
  return Rule(lambda v: isinstance(v, str) and v in options,
              f"one of {options}")


def _known_metric(value) -> bool:
  if not isinstance(value, str):
    return False
  if value in graph_lib.BRUTE_FORCE_METRICS:
    return True
  from pynndescent.distances import named_distances  # pylint: disable=g-import-not-at-top
  return value in named_distances


BOOLEAN = Rule(lambda v: isinstance(v, (bool, np.bool_)), "True or False")

RULES: dict[str, Rule] = {
    "n_components": integer(1),
    "n_neighbors": integer(2),
    "min_dist": number(0),
    "spread": number(0, open_low=True),
    "metric": Rule(_known_metric, "'euclidean', 'cosine' or a pynndescent "
                   "metric name"),
    "n_epochs": optional(integer(1), "chosen from the data size"),
    "batch_size": integer(2, note=": a step's negatives are the ends of "
                          "its other edges"),
    "negative_sample_rate": integer(1),
    "learning_rate": Rule(
        lambda v: v is None or (is_real(v) and v > 0),
        "> 0 or None (chosen from the encoder's input)"),
    "encoder": Rule(lambda v: isinstance(v, str), "a preset name"),
    "decoder": BOOLEAN,
    "parametric_reconstruction": BOOLEAN,
    "reconstruction_weight": number(0),
    "autoencoder_loss": BOOLEAN,
    "reconstruction_loss": choice(("auto", *losses.LIKELIHOODS)),
    "global_correlation_loss_weight": number(0, note=" (0: off)"),
    "spectral_init": BOOLEAN,
    "layout_init": BOOLEAN,
    "layout_epochs": integer(0),
    "init_epochs": integer(0),
    "init_batch_size": integer(1),
    "repulsion_strength": number(0),
    "set_op_mix_ratio": number(0, 1),
    "local_connectivity": number(0),
    "grad_clip_norm": number(0, note=" (0: off)"),
    "weight_decay": number(0, note=" (0: plain Adam)"),
    "random_state": optional(integer(0, 2**32 - 1),
                              "a seed drawn per fit"),
    "verbose": BOOLEAN,
    "brute_force_max_samples": integer(0),
    "chunk_mode": choice(CHUNK_MODES),
    "steps_per_call": integer(1),
    "full_batch_max_points": integer(0),
    "neighbor_mixing": number(0, 1, note=" (a fraction of the way to a "
                               "neighbour)"),
    "input_noise": number(0, note=" (a fraction of the data's feature "
                           "std; 0: off)"),
    "pca_components": integer(0, note=" (0: no projection)"),
    "negative_draws": integer(1),
    "final_augmentation": number(0, 1, note=" (the augmentation's scale at "
                                 "the last step; 1: constant)"),
}


def check_value(name: str, value: Any, rule: Rule) -> None:
  """Raises "<name> must be <requirement>, got <value>." unless it passes."""
  if not rule.test(value):
    raise ValueError(f"{name} must be {rule.requirement}, got {value!r}.")


def check_hyperparameters(hp: Mapping[str, Any]) -> None:
  """Raises ValueError naming the first invalid, unknown or missing keyword.

  hp: `ParametricUMAP.get_params()`, or a saved model's hyperparameters.
  """
  unknown = sorted(set(hp) - set(RULES))
  if unknown:
    raise ValueError(f"Unknown hyperparameter(s) {unknown}; ParametricUMAP "
                     f"takes {sorted(RULES)}.")
  missing = [name for name in RULES if name not in hp]
  if missing:
    raise ValueError(f"Missing hyperparameter(s) {missing}.")
  for name, rule in RULES.items():
    check_value(name, hp[name], rule)
  if hp["min_dist"] > hp["spread"]:
    raise ValueError(f"min_dist must be in [0, spread={hp['spread']}], got "
                     f"{hp['min_dist']}.")
  plan_lib.preset(hp)


class NonNumericInputError(ValueError, TypeError):
  """Input that is not numbers (strings, dicts, ...). A ValueError like
  every bad input here, and a TypeError as NumPy raises for such objects."""


class Inputs(NamedTuple):
  """A validated array and the dtype that results are handed back in."""
  array: np.ndarray  # float32 [N, D] or [N, H, W, C]: what the network sees
  dtype: np.dtype    # float32 or float64 (any other input dtype: float64)


def _float_array(data, what: str, **check_params) -> np.ndarray:
  """`data` as a float32 or float64 array; sparse, complex, non-numeric
  input fails with a ValueError naming `what`."""
  if scipy.sparse.issparse(data):
    raise ValueError(f"{what} is a sparse matrix: pass a dense array "
                     "(e.g. X.toarray()).")
  if getattr(getattr(data, "dtype", None), "kind", None) == "c":
    raise ValueError(f"Complex data not supported: {what} has a complex "
                     "dtype; pass real values (e.g. its real and imaginary "
                     "parts as separate features).")
  try:
    array = check_array(data, dtype=None, ensure_all_finite=False,
                        input_name=what, **check_params)
  except TypeError as error:
    raise NonNumericInputError(f"{what} must be a numeric array: {error}"
                               ) from None
  if array.dtype not in FLOAT_DTYPES:
    try:
      array = array.astype(np.float64)
    except (TypeError, ValueError) as error:
      raise NonNumericInputError(f"{what} must be a numeric array: {error}"
                                 ) from None
  return array


def _check_finite(array: np.ndarray, what: str) -> None:
  bad = ~np.isfinite(array)
  if bad.any():
    rows = np.unique(np.nonzero(bad.reshape(len(array), -1))[0])
    raise ValueError(
        f"{what} contains NaN or Inf values in {len(rows)} row(s) (first: "
        f"{rows[:5].tolist()}); impute or drop them before fitting.")


def validate_inputs(data, hp: Mapping[str, Any], what: str = "X") -> Inputs:
  """X [N, D] or images [N, H, W(, C)] ([N, H, W] gains a channel)."""
  array = _float_array(data, what, allow_nd=True)
  dtype = array.dtype
  if array.ndim == 3:  # [N, H, W] grey images
    array = array[..., None]
  if array.ndim not in (2, 4):
    raise ValueError(
        f"{what} must be a 2-D array [n_samples, n_features] or images "
        f"[n_samples, height, width(, channels)]; got shape {array.shape}.")
  if array[0].size == 0:
    raise ValueError(f"{what} is empty (shape {array.shape}).")
  _check_finite(array, what)
  if plan_lib.family(hp) == "conv" and array.ndim != 4:
    raise ValueError(f"encoder={hp['encoder']!r} is convolutional and needs "
                     f"images [N, H, W(, C)]; {what} has shape "
                     f"{array.shape}. Reshape it, or use encoder='mlp'.")
  return Inputs(np.ascontiguousarray(array, np.float32), dtype)


def check_inputs(data, hp: Mapping[str, Any], what: str = "X") -> np.ndarray:
  """float32 array [N, D] or [N, H, W, C] (`validate_inputs`' array)."""
  return validate_inputs(data, hp, what).array


def check_features(array: np.ndarray, input_shape: tuple[int, ...],
                   method: str) -> None:
  """The per-sample shape must be the fitted one."""
  if array.shape[1:] != tuple(input_shape):
    raise ValueError(
        f"{method}() got inputs of shape {array.shape[1:]} per sample, but "
        f"the model was fitted on {tuple(input_shape)}.")


def check_points(embedding, n_components: int) -> Inputs:
  """Points of the embedding space: [n, n_components] (one point: [c])."""
  points = _float_array(embedding, "inverse_transform()'s input",
                        ensure_2d=False)
  if points.ndim == 1 and points.shape[0] == n_components:
    points = points[None]
  if points.ndim != 2 or points.shape[1] != n_components:
    raise ValueError(
        f"inverse_transform() needs points of shape [n, {n_components}] "
        f"(n_components={n_components}); got {points.shape}.")
  if not np.all(np.isfinite(points)):
    raise ValueError("inverse_transform() got NaN or Inf coordinates.")
  return Inputs(np.ascontiguousarray(points, np.float32), points.dtype)
