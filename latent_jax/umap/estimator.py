"""`ParametricUMAP`: a scikit-learn estimator with umap-learn's interface.

    reducer = ParametricUMAP(n_components=2, random_state=0)
    embedding = reducer.fit_transform(X)      # [N, D] or images [N, H, W(, C)]
    reducer.transform(X_new); reducer.inverse_transform(points)
    reducer.save(path); ParametricUMAP.load(path)

A `TransformerMixin, BaseEstimator`: clone, pipelines, grid searches,
`set_output`, `get_feature_names_out` ("parametricumap0", ...), pickling.
Results come back in the input's float dtype (float32 or float64; other
dtypes: float64); the network computes in float32. The estimator holds the
parameters and the fitted attributes and delegates: validation.py checks,
plan.py sizes, fit.py fits (through the shared training engine,
latent_jax/train), refine.py / inverse.py transform and invert,
persistence.py saves.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from sklearn.base import (BaseEstimator, ClassNamePrefixFeaturesOutMixin,
                          TransformerMixin)
from sklearn.utils.validation import check_is_fitted, validate_data

from latent_jax.train import runner
from latent_jax.umap import graph as graph_lib
from latent_jax.umap import inverse, persistence, progress, validation
from latent_jax.umap import plan as plan_lib
from latent_jax.umap.apply import apply_in_batches
from latent_jax.umap.fit import Fit, FitResult
from latent_jax.umap.refine import refine_embedding

TRANSFORM_METHODS = ("encoder", "refine")
INVERSE_METHODS = ("auto", "decoder", "interpolate")


class HostModel(NamedTuple):
  """A fitted network as pickled: its structure and host (NumPy) arrays,
  so a pickle holds no device buffers and loads on any device."""
  graphdef: nnx.GraphDef
  params: Any  # nnx.State of NumPy arrays


class ParametricUMAP(ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                     BaseEstimator):
  """UMAP with a neural encoder, trained with JAX on the fuzzy kNN graph.

  Args:
    n_components: embedding dimension.
    n_neighbors: neighbours per point in the kNN graph (local vs global).
    min_dist, spread: shape of the low-dimensional similarity curve.
    metric: input-space metric ("euclidean", "cosine", or any pynndescent
      metric, which then always uses pynndescent).
    n_epochs: passes over the weighted edge list. Up to
      `full_batch_max_points` points (MLP encoders), a step embeds every
      point and scores every edge: one epoch per step; None: a fixed
      budget of points embedded, spread over a bounded number of steps
      (plan.py). Above, minibatches of `batch_size` sampled edges; None:
      `plan.DEFAULT_UMAP_STEPS` steps (as epochs within [1, 500]).
    batch_size: edges per training step in minibatch mode (above
      full_batch_max_points points; full-batch steps score every edge),
      at least 2: each edge's negatives are drawn among the ends of the
      step's other edges, importance-weighted to uniform (phases.py).
    negative_sample_rate: uniform negatives per positive edge: the
      repulsion's weight, as in umap-learn.
    negative_draws: negatives actually drawn per point (full batch:
      uniform) or per edge (minibatches: among the step's other edges'
      ends, weighted to uniform) each step; their mean stands for the
      negative_sample_rate negatives. More draws: less noise in the
      repulsion, so finer local structure, at a small cost per step.
    learning_rate: Adam's learning rate (decays linearly to 0). None: 4.5e-2
      for MLP encoders that see at most `plan.NARROW_INPUT_FEATURES`
      features (narrow inputs, or the PCA in front of wide ones), else 1e-2:
      a first layer with many inputs amplifies each step.
    encoder: a preset of `latent_jax.models.PRESETS`, or "mlp" (5 x 64 SiLU,
      `umap_deep`; umap-learn's 3 x 100 is `umap_mlp`) / "conv" (the
      `small` conv trunk, for images).
    decoder: build a decoder (the encoder preset's decoder) for
      `inverse_transform`; implied by `parametric_reconstruction`.
    parametric_reconstruction: train the decoder with a reconstruction loss.
    reconstruction_weight: weight of that loss.
    autoencoder_loss: let the reconstruction gradient reach the encoder
      (otherwise the decoder learns to invert a fixed encoder).
    reconstruction_loss: "bernoulli" (inputs in [0, 1]), "gaussian" (MSE),
      or "auto" (bernoulli when every input lies in [0, 1]).
    global_correlation_loss_weight: weight of umap-learn's global-structure
      term (correlation of paired distances); 0: off.
    spectral_init: start the layout from the graph's spectral embedding
      (else from random coordinates).
    layout_init: before training the network, optimise UMAP's
      non-parametric layout on the device (layout.py) and regress the
      encoder onto it; otherwise regress onto the spectral embedding
      (paraDime's recipe), or skip the phase if neither is on.
    layout_epochs: passes over the weighted edge list for that layout.
    init_epochs: passes over the points while regressing onto the layout.
      A few of each suffice: the target only starts the network near
      UMAP's layout, and the UMAP phase does the work.
    init_batch_size: points per step of that regression (small batches:
      more updates for the same work).
    repulsion_strength: weight of the repulsion (UMAP's gamma); 2, where
      umap-learn's default is 1: a network is smooth, and needs the
      stronger push apart to separate neighbourhoods as UMAP's free
      layout does (ParamRepulsor's argument; docs/benchmarks.md).
    set_op_mix_ratio, local_connectivity: as umap-learn.
    grad_clip_norm: global-norm gradient clipping (0: off).
    weight_decay: AdamW's decoupled weight decay (0: plain Adam).
    random_state: seed for everything random; None draws one per fit (kept
      as `seed_`).
    verbose: log each stage with its time and each phase's progress with
      its ETA at INFO (logger `latent_jax.umap.progress`; to stderr when
      logging is not configured); False: the same lines at DEBUG.
    brute_force_max_samples: exact kNN up to this many points.
    chunk_mode: "auto", "device_loop" or "dispatch" (train/chunk.py).
    steps_per_call: training steps per host call.
    full_batch_max_points: up to this many points, each step embeds every
      point once and scores every edge of the graph on them.
    neighbor_mixing: augmentation: each point the network sees is moved a
      random fraction in [-neighbor_mixing, neighbor_mixing] of the way
      towards one of its kNN (negative: away from it; targets of the init
      phase move with it); 0: off. The encoder also learns the
      neighbourhood along the kNN segments, where new points lie.
    input_noise: augmentation: Gaussian noise added to each input the
      network sees in training (after neighbor_mixing), with a std per
      feature of input_noise times the data's rms feature std, capped at one
      kNN radius (`plan.input_noise_std`); 0: off. The encoder then learns
      a smooth map over the neighbourhoods new points fall in, not one
      fitted to the training points alone.
    pca_components: MLP encoders see inputs with more than twice this many
      features projected onto their top `pca_components` principal
      components (fitted on the training data, then fixed; projection.py):
      a cheap first layer. The graph, decoder and inverse transform stay in
      input space. 0: off.
    final_augmentation: the augmentation's (neighbor_mixing, input_noise)
      scale at the last training step, as a fraction of its start, falling
      linearly; 1: constant. Lower values fit the training points more
      closely (training-set trustworthiness up) and generalise less
      (held-out trustworthiness down).

  Fitted attributes: `embedding_` [N, n_components] float32, `graph_` (the
  fuzzy kNN graph, [N, N] sparse), `edges_` (its sampled edges), `model_`
  (the NNX network), `training_data_` (float32), `loss_history_`
  (UMAP-phase loss per chunk), `plan_`, `timings_` (seconds per stage:
  setup, knn, graph, edges, spectral, compile, layout, transfer, each
  phase, finish; they add up to the fit's wall time), `edges_per_second_`,
  `seed_`, `a_`, `b_`, `learning_rate_`, `input_noise_std_`,
  `input_projection_`, `reconstruction_likelihood_`, `input_shape_`,
  `n_features_in_` (features per sample; an image's H * W * C) and
  `feature_names_in_` (fitted on a DataFrame).
  """

  def __init__(self, n_components: int = 2, n_neighbors: int = 15,
               min_dist: float = 0.1, spread: float = 1.0,
               metric: str = "euclidean", n_epochs: int | None = None,
               batch_size: int = 8192, negative_sample_rate: int = 5,
               learning_rate: float | None = None, encoder: str = "mlp",
               decoder: bool = False, parametric_reconstruction: bool = False,
               reconstruction_weight: float = 1.0,
               autoencoder_loss: bool = False,
               reconstruction_loss: str = "auto",
               global_correlation_loss_weight: float = 0.0,
               spectral_init: bool = True, layout_init: bool = True,
               layout_epochs: int = 5, init_epochs: int = 5,
               init_batch_size: int = 512,
               repulsion_strength: float = 2.0, set_op_mix_ratio: float = 1.0,
               local_connectivity: float = 1.0, grad_clip_norm: float = 4.0,
               weight_decay: float = 0.0,
               random_state: int | None = None, verbose: bool = False,
               brute_force_max_samples: int =
               graph_lib.DEFAULT_BRUTE_FORCE_MAX_SAMPLES,
               chunk_mode: str = "auto", steps_per_call: int = 100,
               full_batch_max_points: int = 10_000,
               neighbor_mixing: float = 0.4, input_noise: float = 1.0,
               pca_components: int = 50, negative_draws: int = 32,
               final_augmentation: float = 1.0):
    arguments = locals()
    for name in self._get_param_names():
      setattr(self, name, arguments[name])

  # --- scikit-learn protocol ----------------------------------------------

  def __sklearn_tags__(self):
    """A transformer of dense, finite input that keeps float32 / float64."""
    tags = super().__sklearn_tags__()
    tags.input_tags.allow_nan = False
    tags.input_tags.sparse = False
    tags.transformer_tags.preserves_dtype = ["float64", "float32"]
    return tags

  def __sklearn_is_fitted__(self) -> bool:
    """Fitted once it has a network and an embedding (`check_is_fitted`)."""
    return hasattr(self, "embedding_") and hasattr(self, "model_")

  @property
  def _n_features_out(self) -> int:
    """Output columns, for `get_feature_names_out` (fitted models only)."""
    return self.embedding_.shape[1]

  def __getstate__(self) -> dict[str, Any]:
    """The pickled state: the network as a `HostModel`."""
    state = dict(super().__getstate__())  # never the live __dict__
    if isinstance(state.get("model_"), nnx.Module):
      graphdef, params = nnx.split(state["model_"])
      state["model_"] = HostModel(graphdef, jax.tree.map(np.asarray, params))
    return state

  def __setstate__(self, state: dict[str, Any]) -> None:
    """Unpickles; the network is rebuilt on the default device."""
    model = state.get("model_")
    if isinstance(model, HostModel):
      state = dict(state, model_=nnx.merge(
          model.graphdef, jax.tree.map(jnp.asarray, model.params)))
    super().__setstate__(state)

  @property
  def has_decoder(self) -> bool:
    return plan_lib.has_decoder(self.get_params())

  def _check_X(self, X, *, reset: bool) -> validation.Inputs:
    """Validates X; records (reset) or checks its feature count and names."""
    # A DataFrame's names (and count) first, as scikit-learn checks them;
    # arrays are counted as flattened (an image: H * W * C features).
    is_frame = hasattr(X, "columns")
    if is_frame:
      validate_data(self, X, reset=reset, skip_check_array=True)
    inputs = validation.validate_inputs(X, self.get_params())
    if not is_frame:
      validate_data(self, inputs.array.reshape(len(inputs.array), -1),
                    reset=reset, skip_check_array=True)
    return inputs

  # --- Fit -------------------------------------------------------------------

  def prepare_fit(self, X) -> Fit:
    """Validates X and builds everything before the training steps: the
    graph, the layout, the programs (`fit.Fit`); `fit` and the UMAP run
    then train it through the engine and call `finish_fit`."""
    clock = progress.Progress(self.verbose)  # timings_ count from here
    hp = self.get_params()
    validation.check_hyperparameters(hp)
    inputs = self._check_X(X, reset=True)
    for fitted in ("embedding_", "model_", "training_data_"):
      self.__dict__.pop(fitted, None)  # a refit starts unfitted
    seed = (int(np.random.default_rng().integers(2**31 - 1))
            if self.random_state is None else int(self.random_state))
    return Fit(hp, inputs.array, seed, clock, inputs.dtype)

  def finish_fit(self, result: FitResult) -> "ParametricUMAP":
    """Takes a finished fit's results as the fitted attributes."""
    self.model_, self.embedding_ = result.model, result.embedding
    self.training_data_, self.graph_ = result.training_data, result.graph
    self.edges_ = result.edges
    self.input_projection_ = result.input_projection
    self.input_noise_std_ = result.input_noise_std
    self.plan_, self.seed_ = result.plan, result.seed
    self.a_, self.b_ = result.a, result.b
    self.reconstruction_likelihood_ = result.reconstruction_likelihood
    self.learning_rate_ = result.learning_rate
    self.input_shape_ = tuple(result.training_data.shape[1:])
    self.timings_ = dict(result.timings)
    self.loss_history_ = result.loss_history
    self.edges_per_second_ = result.edges_per_second
    return self

  def _fit(self, X) -> np.dtype:
    """Fits; returns the dtype X's results come back in."""
    fit = self.prepare_fit(X)
    state = runner.train(
        fit.init_state(), fit.phases(),
        runner.Cadence(steps_per_call=self.steps_per_call, log_every=0),
        hooks=runner.Hooks(after_chunk=fit.record_chunk),
        stop_on_sigterm=False, advice="Lower learning_rate or grad_clip_norm.")
    self.finish_fit(fit.finish(state))
    self._log(f"fit: {sum(self.timings_.values()):.2f} s in all")
    return fit.output_dtype

  def fit(self, X, y=None) -> "ParametricUMAP":
    """Builds the graph of X and trains the encoder (and decoder) on it.

    X: [N, D] or images [N, H, W(, C)]; y: ignored (unsupervised).
    """
    del y
    self._fit(X)
    return self

  def fit_transform(self, X, y=None) -> np.ndarray:
    """Fits, then returns the embedding of X, [N, n_components], in X's
    float dtype."""
    del y
    dtype = self._fit(X)
    return self.embedding_.astype(dtype)

  def _log(self, message: str) -> None:
    progress.log(self.verbose, message)

  # --- Transform ----------------------------------------------------------

  def transform(self, X, method: str = "encoder") -> np.ndarray:
    """Embeds new data: [N, n_components], in X's float dtype.

    method: "encoder" (the trained network, jitted and batched: the
    parametric transform), or "refine": the encoder's output refined
    against the fixed training embedding as umap-learn's `transform` does
    (each point's kNN among the training data, then UMAP's cross-entropy;
    refine.py). "refine" needs the training data and costs a kNN search of
    it; where the encoder saw few points it places new ones better.
    """
    check_is_fitted(self)
    if method not in TRANSFORM_METHODS:
      raise ValueError(f"method must be 'encoder' or 'refine', got "
                       f"{method!r}.")
    inputs = self._check_X(X, reset=False)
    array = inputs.array
    validation.check_features(array, self.input_shape_, "transform")
    embedding = apply_in_batches(self.model_, "embed", array,
                                 self.input_projection_)
    if method == "encoder":
      return embedding.astype(inputs.dtype, copy=False)
    if self.training_data_ is None:
      raise ValueError("transform(method='refine') needs the training data, "
                       "which this model was saved without; use "
                       "method='encoder'.")
    clock = progress.Progress(self.verbose)
    refined = refine_embedding(
        self.training_data_, self.embedding_, array, embedding,
        n_neighbors=self.n_neighbors, metric=self.metric, seed=self.seed_,
        a=self.a_, b=self.b_, negative_sample_rate=self.negative_sample_rate,
        repulsion_strength=self.repulsion_strength)
    clock.log(f"refine: {len(array)} points: {clock.lap('refine'):.2f} s")
    return np.asarray(refined).astype(inputs.dtype, copy=False)

  def inverse_transform(self, X, method: str = "auto") -> np.ndarray:
    """Points in the embedding [n, n_components] -> data space, shaped like
    the inputs, in the points' float dtype.

    method: "decoder" (the trained decoder, jitted and batched),
    "interpolate" (the umap-learn inverse_transform tutorial's method: a
    weighted average of the training points around the point's Delaunay
    simplex), or "auto" (the decoder when one was trained). Points outside
    the convex hull of `embedding_` get a warning: inverse maps are
    unreliable there.
    """
    check_is_fitted(self)
    if method not in INVERSE_METHODS:
      raise ValueError(f"method must be 'auto', 'decoder' or 'interpolate', "
                       f"got {method!r}.")
    points, dtype = validation.check_points(X, self.n_components)
    inverse.warn_outside_hull(self.embedding_, points)
    if method == "decoder" and not self.has_decoder:
      raise ValueError("method='decoder' needs a decoder: fit with "
                       "parametric_reconstruction=True (or decoder=True).")
    if method == "interpolate" or not self.has_decoder:
      if self.training_data_ is None:
        raise ValueError("method='interpolate' needs the training data, "
                         "which this model was saved without.")
      result = inverse.interpolate(self.embedding_, self.training_data_,
                                   points, a=self.a_, b=self.b_,
                                   n_neighbors=self.n_neighbors)
    else:
      result = apply_in_batches(
          self.model_, f"decode:{self.reconstruction_likelihood_}", points)
    return np.asarray(result).astype(dtype, copy=False)

  # --- Save / load --------------------------------------------------------

  def save(self, path: str, *, include_training_data: bool = True) -> None:
    """Writes hyperparameters (JSON), parameters (orbax), arrays (.npy),
    atomically (persistence.py): the version-stable format; pickle is the
    convenience path.

    The training data serves the interpolating inverse and the refined
    transform; leave it out of large models with include_training_data=False.
    """
    check_is_fitted(self)
    persistence.save(self, path, include_training_data=include_training_data)

  @classmethod
  def load(cls, path: str) -> "ParametricUMAP":
    """Rebuilds a saved model; transform/inverse_transform work at once."""
    return persistence.load(cls, path)
