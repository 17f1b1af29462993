"""Saving and loading a fitted ParametricUMAP: JSON, orbax and .npy only.

No pickled code: `load` rebuilds the network from the saved
hyperparameters and restores its parameters into it, so loading never runs
code from the saved files. This is the version-stable format (pickling the
estimator is the convenience path).

    <path>/hyperparameters.json   format_version, constructor arguments,
                                  fitted scalars, num_samples, files
    <path>/params/                orbax checkpoint of the network
    <path>/embedding.npy          [N, n_components] float32
    <path>/training_data.npy      [N, *input_shape_] float32 (optional:
                                  interpolating inverse, refined transform)
    <path>/graph.npz              [N, N] the fuzzy kNN graph (scipy.sparse)
    <path>/pca_<field>.npy        the encoder's input projection, if any

`save` writes into a temporary sibling folder and renames it into place, so
an interrupted save never looks complete and a previous save at the path is
replaced whole or not at all. `load` checks the format version, every
hyperparameter (validation.RULES, as `fit` does) and fitted scalar, and
every file against the shape and dtype the JSON implies
(`expected_arrays`); each fault is a ValueError naming the file and field.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import uuid
from typing import Any

import jax
import numpy as np
import scipy.sparse
from flax import nnx

from latent_jax import losses
from latent_jax.train.workdir import write_json
from latent_jax.umap import plan as plan_lib
from latent_jax.umap import validation
from latent_jax.umap.fit import build_model
from latent_jax.umap.projection import InputProjection

FORMAT_VERSION = 1
HYPERPARAMETERS_FILE = "hyperparameters.json"
PARAMS_DIR = "params"
EMBEDDING_FILE, GRAPH_FILE = "embedding.npy", "graph.npz"
TRAINING_DATA_FILE = "training_data.npy"
PCA_FILES = {name: f"pca_{name}.npy" for name in InputProjection._fields}
META_KEYS = ("format_version", "hyperparameters", "fitted", "num_samples",
             "files")
Rule = validation.Rule
FITTED_RULES: dict[str, Rule] = {
    "input_shape_": Rule(
        lambda v: isinstance(v, list) and len(v) in (1, 3)
        and all(validation.is_int(d) and d > 0 for d in v),
        "a list of 1 or 3 positive integers"),
    "a_": validation.number(0, open_low=True),
    "b_": validation.number(0, open_low=True),
    "reconstruction_likelihood_": validation.choice(losses.LIKELIHOODS),
    "loss_history_": Rule(lambda v: isinstance(v, list)
                          and all(validation.is_real(x) for x in v),
                          "a list of finite numbers"),
    "seed_": validation.integer(0),
    "learning_rate_": validation.number(0, open_low=True),
    "input_noise_std_": validation.number(0),
}
FEATURE_NAMES = "feature_names_in_"  # optional: fitted on a DataFrame


def expected_arrays(hp: dict[str, Any], input_shape: tuple[int, ...],
                    num_samples: int, with_training_data: bool
                    ) -> dict[str, tuple[tuple[int, ...], str]]:
  """{file: (shape, dtype)} of a saved model's arrays: the one rule `save`
  writes by and `load` checks against."""
  n, features = num_samples, math.prod(input_shape)
  expected = {EMBEDDING_FILE: ((n, hp["n_components"]), "float32"),
              GRAPH_FILE: ((n, n), "float32")}
  if with_training_data:
    expected[TRAINING_DATA_FILE] = ((n, *input_shape), "float32")
  projected = plan_lib.encoder_features(hp, tuple(input_shape))
  if projected is not None:
    expected[PCA_FILES["mean"]] = ((features,), "float32")
    expected[PCA_FILES["components"]] = ((features, projected), "float32")
  return expected


# --- save ----------------------------------------------------------------------


def _is_replaceable(path: str) -> bool:
  """An earlier save, or an empty folder: never a folder of other files."""
  return (os.path.exists(os.path.join(path, HYPERPARAMETERS_FILE))
          or (os.path.isdir(path) and not os.listdir(path)))


def save(reducer: Any, path: str, *, include_training_data: bool = True
         ) -> None:
  """Writes a fitted reducer to the directory `path`, atomically."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(path)
  if os.path.exists(path) and not _is_replaceable(path):
    raise ValueError(f"{path} exists and is not a model written by "
                     f"ParametricUMAP.save (no {HYPERPARAMETERS_FILE}); "
                     "choose another path or remove it.")
  parent, name = os.path.split(path)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{name}.saving-", dir=parent)
  try:
    arrays = {EMBEDDING_FILE: reducer.embedding_}
    if include_training_data and reducer.training_data_ is not None:
      arrays[TRAINING_DATA_FILE] = reducer.training_data_
    if reducer.input_projection_ is not None:
      arrays.update({PCA_FILES[field]: values for field, values
                     in reducer.input_projection_._asdict().items()})
    for file, values in arrays.items():  # float32, as expected_arrays says
      np.save(os.path.join(staging, file), np.asarray(values, np.float32),
              allow_pickle=False)
    scipy.sparse.save_npz(os.path.join(staging, GRAPH_FILE),
                          scipy.sparse.csr_matrix(reducer.graph_,
                                                  dtype=np.float32))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.join(staging, PARAMS_DIR),
                      nnx.state(reducer.model_, nnx.Param))
    checkpointer.wait_until_finished()
    write_json(os.path.join(staging, HYPERPARAMETERS_FILE),
               _meta(reducer, sorted([*arrays, GRAPH_FILE])))
    _move_into_place(staging, path)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise


def _meta(reducer: Any, files: list[str]) -> dict[str, Any]:
  fitted = {name: getattr(reducer, name) for name in FITTED_RULES}
  fitted["input_shape_"] = [int(d) for d in fitted["input_shape_"]]
  fitted["loss_history_"] = [float(v) for v in fitted["loss_history_"]]
  if hasattr(reducer, FEATURE_NAMES):
    fitted[FEATURE_NAMES] = [str(n) for n in reducer.feature_names_in_]
  return {"format_version": FORMAT_VERSION,
          "hyperparameters": reducer.get_params(), "fitted": fitted,
          "num_samples": len(reducer.embedding_), "files": files}


def _move_into_place(staging: str, path: str) -> None:
  """Renames the finished folder to `path`; an earlier save there is first
  renamed aside (renames are atomic; a folder cannot replace a folder)."""
  if not os.path.exists(path):
    os.rename(staging, path)
    return
  parent, name = os.path.split(path)
  retired = os.path.join(parent, f".{name}.replaced-{uuid.uuid4().hex}")
  os.rename(path, retired)
  os.rename(staging, path)
  shutil.rmtree(retired, ignore_errors=True)


# --- load ----------------------------------------------------------------------


def _fault(file: str, message: str) -> ValueError:
  return ValueError(f"{file}: {message}")


def _read_meta(path: str) -> dict[str, Any]:
  """hyperparameters.json, every field checked."""
  meta_path = os.path.join(path, HYPERPARAMETERS_FILE)
  if not os.path.exists(meta_path):
    raise FileNotFoundError(f"No {HYPERPARAMETERS_FILE} in {path}: is it a "
                            "directory written by ParametricUMAP.save?")
  try:
    with open(meta_path) as file:
      meta = json.load(file)
  except (json.JSONDecodeError, UnicodeDecodeError) as error:
    raise _fault(meta_path, f"not valid JSON ({error}): truncated or "
                 "edited; save the model again.") from None
  missing = [key for key in META_KEYS if not isinstance(meta, dict)
             or key not in meta]
  if missing:
    raise _fault(meta_path, f"missing field(s) {missing}.")
  if meta["format_version"] != FORMAT_VERSION:
    raise _fault(meta_path, f"format_version is {meta['format_version']!r}; "
                 f"this code reads format {FORMAT_VERSION}: save the model "
                 "again with this version.")
  try:
    if not isinstance(meta["hyperparameters"], dict):
      raise ValueError("must be an object of constructor arguments.")
    validation.check_hyperparameters(meta["hyperparameters"])
  except ValueError as error:
    raise _fault(meta_path, f"field hyperparameters: {error}") from None
  _check_fitted(meta_path, meta)
  return meta


def _check_fitted(meta_path: str, meta: dict[str, Any]) -> None:
  fitted = meta["fitted"]
  if not isinstance(fitted, dict):
    raise _fault(meta_path, "field fitted must be an object.")
  rules = dict(FITTED_RULES)
  if FEATURE_NAMES in fitted:
    rules[FEATURE_NAMES] = Rule(
        lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v)
        and len(v) == math.prod(fitted.get("input_shape_") or [0]),
        "a list of one name per input feature")
  unknown = sorted(set(fitted) - set(rules))
  if unknown:
    raise _fault(meta_path, f"field fitted: unknown key(s) {unknown}.")
  try:
    validation.check_value("num_samples", meta["num_samples"],
                           validation.integer(1))
    validation.check_value("files", meta["files"], Rule(
        lambda v: isinstance(v, list) and all(isinstance(f, str) for f in v),
        "a list of file names"))
    for name, rule in rules.items():
      if name not in fitted:
        raise ValueError(f"{name} is missing.")
      validation.check_value(name, fitted[name], rule)
  except ValueError as error:
    raise _fault(meta_path, f"field fitted: {error}") from None


def _load_array(path: str, file: str, shape: tuple[int, ...], dtype: str):
  """One saved array, present and of the shape and dtype expected."""
  full = os.path.join(path, file)
  if not os.path.exists(full):
    raise _fault(full, f"missing (listed in {HYPERPARAMETERS_FILE}): the "
                 "save is incomplete; save the model again.")
  try:
    array = (scipy.sparse.load_npz(full) if file.endswith(".npz")
             else np.load(full, allow_pickle=False))
  except Exception as error:  # pylint: disable=broad-except
    raise _fault(full, f"unreadable ({type(error).__name__}: {error}): "
                 "truncated or corrupted; save the model again.") from None
  if tuple(array.shape) != shape or str(array.dtype) != dtype:
    raise _fault(full, f"shape {tuple(array.shape)} and dtype {array.dtype}, "
                 f"but {HYPERPARAMETERS_FILE} implies shape {shape} and "
                 f"dtype {dtype}.")
  return array


def _load_arrays(path: str, meta: dict[str, Any]) -> dict[str, Any]:
  """{file: array} of every saved array, each checked."""
  hp, fitted = meta["hyperparameters"], meta["fitted"]
  expected = expected_arrays(hp, tuple(fitted["input_shape_"]),
                             meta["num_samples"],
                             TRAINING_DATA_FILE in meta["files"])
  listed = set(meta["files"])
  if listed != set(expected):
    meta_path = os.path.join(path, HYPERPARAMETERS_FILE)
    raise _fault(meta_path, f"field files lists {sorted(listed)}, but a "
                 f"model with these hyperparameters has {sorted(expected)}.")
  return {file: _load_array(path, file, *spec)
          for file, spec in expected.items()}


def _restore_model(path: str, hp: dict[str, Any], input_shape,
                   projection: InputProjection | None) -> nnx.Module:
  """The network rebuilt from the hyperparameters, parameters restored."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  model = build_model(hp, input_shape, None if projection is None
                      else projection.components.shape[1], 0)
  params_path = os.path.join(path, PARAMS_DIR)
  if not os.path.isdir(params_path):
    raise _fault(params_path, "missing: the save is incomplete; save the "
                 "model again.")
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                          nnx.state(model, nnx.Param))
  try:
    restored = ocp.StandardCheckpointer().restore(params_path, abstract)
  except Exception as error:  # pylint: disable=broad-except
    raise _fault(params_path, f"cannot restore the network's parameters "
                 f"({type(error).__name__}: {error}): truncated, corrupted, "
                 "or saved with other hyperparameters.") from None
  nnx.update(model, restored)
  return model


def load(cls: type, path: str) -> Any:
  """Rebuilds a saved reducer of class `cls`; it transforms at once."""
  path = os.path.abspath(path)
  meta = _read_meta(path)
  arrays = _load_arrays(path, meta)
  reducer = cls(**meta["hyperparameters"])
  fitted = dict(meta["fitted"])
  names = fitted.pop(FEATURE_NAMES, None)
  for name, value in fitted.items():
    setattr(reducer, name, value)
  reducer.input_shape_ = tuple(reducer.input_shape_)
  reducer.n_features_in_ = math.prod(reducer.input_shape_)
  if names is not None:
    reducer.feature_names_in_ = np.asarray(names, dtype=object)
  projection = (InputProjection(*(arrays[PCA_FILES[field]]
                                  for field in InputProjection._fields))
                if PCA_FILES["mean"] in arrays else None)
  reducer.input_projection_ = projection
  reducer.model_ = _restore_model(path, reducer.get_params(),
                                  reducer.input_shape_, projection)
  reducer.embedding_ = arrays[EMBEDDING_FILE]
  reducer.training_data_ = arrays.get(TRAINING_DATA_FILE)
  reducer.graph_ = arrays[GRAPH_FILE]
  return reducer
