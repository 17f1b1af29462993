"""`ParametricUMAP`: a scikit-learn style estimator, umap-learn's interface.

    reducer = ParametricUMAP(n_components=2, random_state=0)
    embedding = reducer.fit_transform(X)      # [N, D] or images [N, H, W(, C)]
    reducer.transform(X_new); reducer.inverse_transform(points)
    reducer.save(path); ParametricUMAP.load(path)

The estimator holds the parameters and the fitted attributes and
delegates: validation.py checks, plan.py sizes, fit.py fits (through the
shared training engine, latent_jax/train), refine.py / inverse.py transform
and invert, persistence.py saves.
"""

from __future__ import annotations

import inspect
import sys
import time
from typing import Any

import numpy as np

from latent_jax.train import runner
from latent_jax.umap import graph as graph_lib
from latent_jax.umap import inverse, persistence, validation
from latent_jax.umap import plan as plan_lib
from latent_jax.umap.apply import apply_in_batches
from latent_jax.umap.fit import Fit, FitResult
from latent_jax.umap.refine import refine_embedding

TRANSFORM_METHODS = ("encoder", "refine")
INVERSE_METHODS = ("auto", "decoder", "interpolate")


class ParametricUMAP:
  """UMAP with a neural encoder, trained with JAX on the fuzzy kNN graph.

  Args:
    n_components: embedding dimension.
    n_neighbors: neighbours per point in the kNN graph (local vs global).
    min_dist, spread: shape of the low-dimensional similarity curve.
    metric: input-space metric ("euclidean", "cosine", or any pynndescent
      metric, which then always uses pynndescent).
    n_epochs: passes over the weighted edge list; None: chosen from the data
      size: MLP encoders on up to `full_batch_max_points` points, where a
      step embeds every point, get a fixed budget of points embedded spread
      over a bounded number of steps (plan.py); otherwise
      `plan.DEFAULT_UMAP_STEPS` steps (as epochs within [1, 500]).
    batch_size: edges per training step.
    negative_sample_rate: uniform negatives per positive edge.
    learning_rate: Adam's learning rate (decays linearly to 0). None: 3e-2
      for MLP encoders that see at most `plan.NARROW_INPUT_FEATURES`
      features (narrow inputs, or the PCA in front of wide ones), else 1e-2:
      a first layer with many inputs amplifies each step.
    encoder: a preset of `latent_jax.models.PRESETS`, or "mlp" (3 x 100 ReLU,
      umap-learn's default) / "conv" (the `small` conv trunk, for images).
    decoder: build a decoder (mirroring the encoder preset) for
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
    init_batch_size: points per step of that regression (small batches:
      more updates for the same work).
    repulsion_strength, set_op_mix_ratio, local_connectivity: as umap-learn.
    grad_clip_norm: global-norm gradient clipping (0: off).
    weight_decay: AdamW's decoupled weight decay (0: plain Adam).
    random_state: seed for everything random; None draws one per fit (kept
      as `seed_`).
    verbose: print each stage with its timing, and training progress.
    brute_force_max_samples: exact kNN up to this many points.
    chunk_mode: "auto", "device_loop" or "dispatch" (train/chunk.py).
    steps_per_call: training steps per host call.
    full_batch_max_points: up to this many points, each step embeds every
      point once and scores `batch_size` edges on them.
    neighbor_mixing: augmentation: each point the network sees is moved a
      random fraction in [0, neighbor_mixing] of the way towards one of its
      kNN (targets of the init phase move with it); 0: off. The encoder also
      learns the segments between neighbours, where new points lie, at a
      small cost on the training set.
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

  Fitted attributes: `embedding_` [N, n_components], `graph_` (the fuzzy
  kNN graph, [N, N] sparse), `edges_` (its sampled edges), `model_` (the NNX network), `training_data_`,
  `loss_history_` (UMAP-phase loss per chunk), `plan_`, `timings_`,
  `edges_per_second_`,
  `seed_`, `a_`, `b_`, `learning_rate_`, `input_noise_std_`,
  `input_projection_`, `reconstruction_likelihood_`, `input_shape_`.
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
               layout_epochs: int = 20, init_epochs: int = 20,
               init_batch_size: int = 512,
               repulsion_strength: float = 1.0, set_op_mix_ratio: float = 1.0,
               local_connectivity: float = 1.0, grad_clip_norm: float = 4.0,
               weight_decay: float = 0.0,
               random_state: int | None = None, verbose: bool = False,
               brute_force_max_samples: int =
               graph_lib.DEFAULT_BRUTE_FORCE_MAX_SAMPLES,
               chunk_mode: str = "auto", steps_per_call: int = 100,
               full_batch_max_points: int = 10_000,
               neighbor_mixing: float = 0.5, input_noise: float = 0.75,
               pca_components: int = 50):
    arguments = locals()
    for name in self._parameter_names():
      setattr(self, name, arguments[name])

  # --- Introspection -------------------------------------------------------

  @classmethod
  def _parameter_names(cls) -> tuple[str, ...]:
    return tuple(name for name in inspect.signature(cls.__init__).parameters
                 if name != "self")

  def get_params(self, deep: bool = True) -> dict[str, Any]:
    """Constructor arguments (scikit-learn convention; JSON-serialisable)."""
    del deep
    return {name: getattr(self, name) for name in self._parameter_names()}

  def __repr__(self) -> str:
    defaults = type(self)().get_params()
    args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()
                     if v != defaults[k])
    return f"ParametricUMAP({args})"

  @property
  def has_decoder(self) -> bool:
    return plan_lib.has_decoder(self.get_params())

  @property
  def is_fitted(self) -> bool:
    return hasattr(self, "embedding_") and hasattr(self, "model_")

  def _log(self, message: str) -> None:
    if self.verbose:
      print(f"[ParametricUMAP] {message}", file=sys.stdout, flush=True)

  def _check_fitted(self, method: str) -> None:
    if not self.is_fitted:
      raise ValueError(f"This ParametricUMAP is not fitted yet: call fit(X) "
                       f"before {method}().")

  # --- Fit -------------------------------------------------------------------

  def prepare_fit(self, X) -> Fit:
    """Validates X and builds everything before the training steps: the
    graph, the layout, the programs (`fit.Fit`); `fit` and the UMAP run
    then train it through the engine and call `finish_fit`."""
    hp = self.get_params()
    validation.check_hyperparameters(hp)
    array = validation.check_inputs(X, hp)
    for fitted in ("embedding_", "model_", "training_data_"):
      self.__dict__.pop(fitted, None)  # a refit starts unfitted
    seed = (int(np.random.default_rng().integers(2**31 - 1))
            if self.random_state is None else int(self.random_state))
    return Fit(hp, array, seed, self._log)

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

  def fit(self, X, y=None) -> "ParametricUMAP":
    """Builds the graph of X and trains the encoder (and decoder) on it."""
    del y  # unsupervised; accepted for scikit-learn pipelines
    started = time.perf_counter()
    fit = self.prepare_fit(X)
    trained = time.perf_counter()
    state = runner.train(
        fit.init_state(), fit.phases(),
        runner.Cadence(steps_per_call=self.steps_per_call, log_every=0),
        hooks=runner.Hooks(after_chunk=fit.record_chunk),
        stop_on_sigterm=False, advice="Lower learning_rate or grad_clip_norm.")
    train_seconds = time.perf_counter() - trained
    self.finish_fit(fit.finish(state))
    self.timings_.update(train=train_seconds,
                         total=time.perf_counter() - started)
    self._log(f"fit: {self.timings_['total']:.2f} s in all")
    return self

  def fit_transform(self, X, y=None) -> np.ndarray:
    """Fits, then returns the embedding of X, [N, n_components]."""
    return self.fit(X, y).embedding_

  # --- Transform ----------------------------------------------------------

  def transform(self, X, method: str = "encoder") -> np.ndarray:
    """Embeds new data: [N, n_components].

    method: "encoder" (the trained network, jitted and batched: the
    parametric transform), or "refine": the encoder's output refined
    against the fixed training embedding as umap-learn's `transform` does
    (each point's kNN among the training data, then UMAP's cross-entropy;
    refine.py). "refine" needs the training data and costs a kNN search of
    it; where the encoder saw few points it places new ones better.
    """
    self._check_fitted("transform")
    if method not in TRANSFORM_METHODS:
      raise ValueError(f"method must be 'encoder' or 'refine', got "
                       f"{method!r}.")
    array = validation.check_inputs(X, self.get_params())
    validation.check_features(array, self.input_shape_, "transform")
    embedding = apply_in_batches(self.model_, "embed", array,
                                 self.input_projection_)
    if method == "encoder":
      return embedding
    if self.training_data_ is None:
      raise ValueError("transform(method='refine') needs the training data, "
                       "which this model was saved without; use "
                       "method='encoder'.")
    started = time.perf_counter()
    refined = refine_embedding(
        self.training_data_, self.embedding_, array, embedding,
        n_neighbors=self.n_neighbors, metric=self.metric, seed=self.seed_,
        a=self.a_, b=self.b_, negative_sample_rate=self.negative_sample_rate,
        repulsion_strength=self.repulsion_strength)
    self._log(f"refine: {len(array)} points: "
              f"{time.perf_counter() - started:.2f} s")
    return refined

  def inverse_transform(self, embedding, method: str = "auto") -> np.ndarray:
    """Points in the embedding -> data space, shaped like the inputs.

    method: "decoder" (the trained decoder, jitted and batched),
    "interpolate" (the umap-learn inverse_transform tutorial's method: a
    weighted average of the training points around the point's Delaunay
    simplex), or "auto" (the decoder when one was trained). Points outside
    the convex hull of `embedding_` get a warning: inverse maps are
    unreliable there.
    """
    self._check_fitted("inverse_transform")
    if method not in INVERSE_METHODS:
      raise ValueError(f"method must be 'auto', 'decoder' or 'interpolate', "
                       f"got {method!r}.")
    points = validation.check_points(embedding, self.n_components)
    inverse.warn_outside_hull(self.embedding_, points)
    if method == "decoder" and not self.has_decoder:
      raise ValueError("method='decoder' needs a decoder: fit with "
                       "parametric_reconstruction=True (or decoder=True).")
    if method == "interpolate" or not self.has_decoder:
      if self.training_data_ is None:
        raise ValueError("method='interpolate' needs the training data, "
                         "which this model was saved without.")
      return inverse.interpolate(self.embedding_, self.training_data_, points,
                                 a=self.a_, b=self.b_,
                                 n_neighbors=self.n_neighbors)
    return apply_in_batches(self.model_,
                            f"decode:{self.reconstruction_likelihood_}",
                            points)

  # --- Save / load --------------------------------------------------------

  def save(self, path: str, *, include_training_data: bool = True) -> None:
    """Writes hyperparameters (JSON), parameters (orbax), arrays (.npy).

    The training data serves the interpolating inverse and the refined
    transform; leave it out of large models with include_training_data=False.
    """
    self._check_fitted("save")
    persistence.save(self, path, include_training_data=include_training_data)

  @classmethod
  def load(cls, path: str) -> "ParametricUMAP":
    """Rebuilds a saved model; transform/inverse_transform work at once."""
    return persistence.load(cls, path)
