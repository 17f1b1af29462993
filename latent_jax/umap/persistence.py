"""Saving and loading a fitted ParametricUMAP: JSON, orbax and .npy only.

No pickled code: `load` rebuilds the network from the saved
hyperparameters and restores its parameters into it, so loading never runs
code from the saved files.

    <path>/hyperparameters.json   constructor arguments + fitted scalars
    <path>/params/                orbax checkpoint of the network
    <path>/embedding.npy          [N, n_components]
    <path>/training_data.npy      [N, ...] (optional: interpolating inverse,
                                  refined transform)
    <path>/graph.npz              the fuzzy kNN graph (scipy.sparse)
    <path>/pca_<field>.npy        the encoder's input projection, if any
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np
import scipy.sparse
from flax import nnx

from latent_jax.train.workdir import write_json
from latent_jax.umap.fit import build_model
from latent_jax.umap.projection import InputProjection

HYPERPARAMETERS_FILE = "hyperparameters.json"
FITTED_SCALARS = ("input_shape_", "a_", "b_", "reconstruction_likelihood_",
                  "loss_history_", "seed_", "learning_rate_",
                  "input_noise_std_")


def save(reducer: Any, path: str, *, include_training_data: bool = True
         ) -> None:
  """Writes a fitted reducer to the directory `path` (created)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(path)
  os.makedirs(path, exist_ok=True)
  fitted = {name: getattr(reducer, name) for name in FITTED_SCALARS}
  fitted["input_shape_"] = list(fitted["input_shape_"])
  fitted["loss_history_"] = [float(v) for v in fitted["loss_history_"]]
  meta = {"hyperparameters": reducer.get_params(), "fitted": fitted}
  write_json(os.path.join(path, HYPERPARAMETERS_FILE), meta)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(path, "params"),
                    nnx.state(reducer.model_, nnx.Param), force=True)
  checkpointer.wait_until_finished()
  np.save(os.path.join(path, "embedding.npy"), reducer.embedding_,
          allow_pickle=False)
  if include_training_data and reducer.training_data_ is not None:
    np.save(os.path.join(path, "training_data.npy"), reducer.training_data_,
            allow_pickle=False)
  scipy.sparse.save_npz(os.path.join(path, "graph.npz"),
                        scipy.sparse.csr_matrix(reducer.graph_))
  if reducer.input_projection_ is not None:
    for name, values in reducer.input_projection_._asdict().items():
      np.save(os.path.join(path, f"pca_{name}.npy"), values,
              allow_pickle=False)


def load(cls: type, path: str) -> Any:
  """Rebuilds a saved reducer of class `cls`; it transforms at once."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(path)
  meta_path = os.path.join(path, HYPERPARAMETERS_FILE)
  if not os.path.exists(meta_path):
    raise FileNotFoundError(f"No {HYPERPARAMETERS_FILE} in {path}: is it a "
                            "directory written by ParametricUMAP.save?")
  with open(meta_path) as file:
    meta = json.load(file)
  reducer = cls(**meta["hyperparameters"])
  for name, value in meta["fitted"].items():
    setattr(reducer, name, value)
  reducer.input_shape_ = tuple(reducer.input_shape_)
  projection = None
  if os.path.exists(os.path.join(path, "pca_mean.npy")):
    projection = InputProjection(*(
        np.load(os.path.join(path, f"pca_{name}.npy"))
        for name in InputProjection._fields))
  reducer.input_projection_ = projection
  model = build_model(
      reducer.get_params(), reducer.input_shape_,
      None if projection is None else projection.components.shape[1], 0)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                          nnx.state(model, nnx.Param))
  nnx.update(model, ocp.StandardCheckpointer().restore(
      os.path.join(path, "params"), abstract))
  reducer.model_ = model
  reducer.embedding_ = np.load(os.path.join(path, "embedding.npy"))
  data_path = os.path.join(path, "training_data.npy")
  reducer.training_data_ = (np.load(data_path) if os.path.exists(data_path)
                            else None)
  reducer.graph_ = scipy.sparse.load_npz(os.path.join(path, "graph.npz"))
  return reducer
