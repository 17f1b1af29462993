"""`ParametricUMAP`: a scikit-learn style estimator, umap-learn's interface.

    reducer = ParametricUMAP(n_components=2, random_state=0)
    embedding = reducer.fit_transform(X)      # [N, D] or images [N, H, W(, C)]
    reducer.transform(X_new); reducer.inverse_transform(points)
    reducer.save(path); ParametricUMAP.load(path)

`fit` walks the pipeline once, each phase in its own module:
    validate -> [a second thread compiles the layout and training programs,
       whose shapes are known from N and k alone]
    -> kNN + fuzzy graph (host, graph.py) -> a, b (curve.py)
    -> network (latent_jax.models.Embedder)
    -> init targets: spectral embedding (spectral.py) refined into UMAP's
       layout on the device (layout.py)
    -> training on the device (training.py, sampling.py): regression onto
       the targets, then UMAP's cross-entropy -> embedding_
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import os
import sys
import threading
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse
from flax import nnx

from latent_jax import losses
from latent_jax.models.embedding import build_embedder
from latent_jax.models.presets import PRESETS
from latent_jax.train.step import TrainState, init_train_state
from latent_jax.umap import graph as graph_lib
from latent_jax.umap import inverse
from latent_jax.umap.curve import find_ab_params
from latent_jax.umap.layout import optimize_layout, rescale_to_box
from latent_jax.umap.projection import (InputProjection, fit_projection,
                                        project)
from latent_jax.umap.refine import refine_positions
from latent_jax.umap.sampling import (EdgeTable, edge_table_shapes,
                                      make_edge_table, max_edges, noise_bank)
from latent_jax.umap.spectral import spectral_coordinates
from latent_jax.umap.training import (PHASES, TrainingData,
                                      UMAPLossSettings, make_umap_chunk)

DEFAULT_UMAP_STEPS = 1000
# Full-batch mode (every point embedded each step): the default budget of
# network work, in points embedded, spread over [MIN, MAX] steps. Like
# umap-learn's 500 epochs for small data and 200 for large, small data gets
# more (cheaper) steps. Measured (python -m experiments.benchmark umap):
# on 5,000 x 784, 600 steps at learning rate 3e-2 train as well as 1,000 at
# 1e-2 did (trustworthiness 0.93); on the 1,437 digits 2,088 steps reach
# umap-learn's training-set scores (0.988 / 0.987 vs its 0.987 / 0.985)
# where 1,000 gave 0.980 / 0.983 and 1,500 0.985 / 0.985.
FULL_BATCH_POINT_BUDGET = 3_000_000
FULL_BATCH_STEPS = (600, 2500)
MAX_INIT_STEPS = 2000
# MLP encoders with at most this many inputs train at the larger default
# learning rate (see the `learning_rate` argument).
NARROW_INPUT_FEATURES = 100
# Adam's moment decays, shorter than optax's 0.9 / 0.999: a fit is a few
# hundred to two thousand steps, and the sampled loss's gradients keep
# changing scale as the layout forms. Measured (seeds 0-2 on 5,000 x 784,
# 0-6 on the 1,437 digits; training-set then held-out trustworthiness):
# 0.9 / 0.999: 0.928, 0.893 and 0.983, 0.973; 0.9 / 0.99: 0.933, 0.899 and
# 0.985, 0.975; 0.8 / 0.97: 0.942, 0.912 and 0.985, 0.974; 0.7 / 0.95:
# 0.943, 0.915 and 0.986, 0.975; 0.6 / 0.9 no better (0.942, 0.911).
ADAM_B1, ADAM_B2 = 0.7, 0.95
# Rows of the input-noise bank (sampling.noise_bank): with random signs,
# 8,192 noise vectors for the steps to draw from.
NOISE_BANK_SIZE = 4096
ENCODER_ALIASES = {"mlp": "umap_mlp", "conv": "small"}
HYPERPARAMETERS_FILE = "hyperparameters.json"
FORMAT_VERSION = 1


@dataclasses.dataclass
class TrainingPlan:
  """How many steps each phase takes; derived from the data at fit time."""
  layout_steps: int   # non-parametric layout (not network steps)
  init_steps: int     # network regression onto the layout
  umap_steps: int     # network trained with the cross-entropy

  @property
  def total_steps(self) -> int:
    """Network steps (the layout runs before them, in one device call)."""
    return self.init_steps + self.umap_steps

  def phase_steps(self, phase: str) -> int:
    return {"init": self.init_steps, "umap": self.umap_steps}[phase]

  def phase_at(self, step: int) -> tuple[str, int]:
    """(phase, last step of that phase + 1) for a global network step."""
    if step < self.init_steps:
      return "init", self.init_steps
    return "umap", self.total_steps


class ParametricUMAP:
  """UMAP with a neural encoder, trained with JAX on the fuzzy kNN graph.

  Args:
    n_components: embedding dimension.
    n_neighbors: neighbours per point in the kNN graph (local vs global).
    min_dist, spread: shape of the low-dimensional similarity curve.
    metric: input-space metric ("euclidean", "cosine", or any pynndescent
      metric, which then always uses pynndescent).
    n_epochs: passes over the weighted edge list; None: chosen from the data
      size. MLP encoders on up to `full_batch_max_points` points, where a
      step costs one pass over all points: a budget of points embedded
      (FULL_BATCH_POINT_BUDGET) spread over 600-2,500 steps (600 for 5,000
      points, 2,088 for the 1,437 digits); otherwise 1,000 steps (as
      epochs within [1, 500] in minibatch mode).
    batch_size: edges per training step.
    negative_sample_rate: uniform negatives per positive edge.
    learning_rate: Adam's learning rate (decays linearly to 0). None: 3e-2
      for MLP encoders that see at most 100 features (narrow inputs, or
      the PCA in front of wide ones), else 1e-2 (wide raw inputs, conv
      encoders). Measured: 3e-2 beat 1e-2 and 5e-2 on the digits and on
      5,000 x 784 through the PCA; on the raw 784 pixels 3e-2 trained
      worse than 1e-2 (trustworthiness 0.877 vs 0.902), as the first
      layer's many inputs amplify each step.
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
      more updates for the same work; measured on 5,000 x 784, 200 steps
      of 512 points regress as well as 200 of all 5,000).
    repulsion_strength, set_op_mix_ratio, local_connectivity: as umap-learn.
    grad_clip_norm: global-norm gradient clipping (0: off).
    weight_decay: AdamW's decoupled weight decay (0: plain Adam).
    random_state: seed for everything random; None draws one.
    verbose: print each phase with its timing, and training progress.
    brute_force_max_samples: exact kNN up to this many points.
    chunk_mode: "auto", "device_loop" or "dispatch" (see training.py).
    steps_per_call: training steps per host call.
    full_batch_max_points: up to this many points, each step embeds every
      point once and scores `batch_size` edges on them.
    neighbor_mixing: augmentation: each point the network sees is moved a
      random fraction in [0, neighbor_mixing] of the way towards one of its
      kNN (targets of the init phase move with it); 0: off. It trades a
      little training-set quality for better transforms of new data
      (measured on the digits, 3 seeds, 0.5: held-out trustworthiness
      0.934 -> 0.949, 5-NN accuracy 0.912 -> 0.932; training set
      0.986 -> 0.982).
    input_noise: augmentation: Gaussian noise added to each input the
      network sees in training (after neighbor_mixing; per point and step
      a random signed row of a bank of 4,096 normal vectors), with a std
      per feature of input_noise times the data's rms feature std (the
      root of the mean per-feature variance), capped so that the noise
      vector is at most one kNN radius long (`_input_noise_std`); 0: off.
      The encoder then learns a smooth map over the neighbourhoods new
      points fall in, not one fitted to the training points alone.
      Measured (held-out trustworthiness / 5-NN accuracy of the encoder,
      `transform`; s: the noise std per feature):
      - the 1,437 digits (s=0.196, the cap), seeds 0-6: 0.974 / 0.964;
        off: 0.960 / 0.941 (old Adam moments); umap-learn's transform
        0.973 / 0.962; the training set pays ~0.002.
      - 5,000 x 784 digits (s=0.158, 0.75 x their 0.211), seeds 0-2:
        0.915 / 0.922; off: 0.862 / 0.877 (old Adam moments). A noise one
        kNN radius long (0.61 there) blurred the classes (training 5-NN
        accuracy 0.93 -> 0.87); s=0.211: 0.914 / 0.913.
      - the digits through a 3- or 8-component PCA: 0.75 x the feature
        std (a noise 3x the kNN radius) cost 0.02 of training-set
        trustworthiness; the cap keeps it small.
    pca_components: MLP encoders see inputs with more than twice this many
      features projected onto their top `pca_components` principal
      components (fitted on the training data, then fixed; projection.py);
      the graph, decoder and inverse transform stay in input space. 0: off.
      It makes the encoder's first layer cheap (5,000 x 784 digits: fit
      2x faster, training-set quality a little higher); on narrower inputs the saving is
      small and the measured held-out quality drops (digits, 64 -> 50), so
      those stay raw.
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
    self.n_components = n_components
    self.n_neighbors = n_neighbors
    self.min_dist = min_dist
    self.spread = spread
    self.metric = metric
    self.n_epochs = n_epochs
    self.batch_size = batch_size
    self.negative_sample_rate = negative_sample_rate
    self.learning_rate = learning_rate
    self.encoder = encoder
    self.decoder = decoder
    self.parametric_reconstruction = parametric_reconstruction
    self.reconstruction_weight = reconstruction_weight
    self.autoencoder_loss = autoencoder_loss
    self.reconstruction_loss = reconstruction_loss
    self.global_correlation_loss_weight = global_correlation_loss_weight
    self.spectral_init = spectral_init
    self.layout_init = layout_init
    self.layout_epochs = layout_epochs
    self.init_epochs = init_epochs
    self.init_batch_size = init_batch_size
    self.repulsion_strength = repulsion_strength
    self.set_op_mix_ratio = set_op_mix_ratio
    self.local_connectivity = local_connectivity
    self.grad_clip_norm = grad_clip_norm
    self.weight_decay = weight_decay
    self.random_state = random_state
    self.verbose = verbose
    self.brute_force_max_samples = brute_force_max_samples
    self.chunk_mode = chunk_mode
    self.steps_per_call = steps_per_call
    self.full_batch_max_points = full_batch_max_points
    self.neighbor_mixing = neighbor_mixing
    self.input_noise = input_noise
    self.pca_components = pca_components
    self._model = None

  # --- Introspection -------------------------------------------------------

  def get_params(self, deep: bool = True) -> dict[str, Any]:
    """Constructor arguments (scikit-learn convention; JSON-serialisable)."""
    del deep
    names = inspect.signature(type(self).__init__).parameters
    return {name: getattr(self, name) for name in names if name != "self"}

  def __repr__(self) -> str:
    changed = {k: v for k, v in self.get_params().items()
               if v != type(self)().get_params()[k]}
    args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
    return f"ParametricUMAP({args})"

  @property
  def has_decoder(self) -> bool:
    return bool(self.decoder or self.parametric_reconstruction)

  @property
  def is_fitted(self) -> bool:
    return self._model is not None and hasattr(self, "embedding_")

  def _log(self, message: str) -> None:
    if self.verbose:
      print(f"[ParametricUMAP] {message}", file=sys.stdout, flush=True)

  # --- Validation ----------------------------------------------------------

  def _check_hyperparameters(self) -> None:
    positive_ints = ("n_components", "n_neighbors", "batch_size",
                     "init_batch_size", "negative_sample_rate",
                     "steps_per_call")
    if not isinstance(self.pca_components, (int, np.integer)) or (
        self.pca_components < 0):
      raise ValueError(f"pca_components must be an integer >= 0 (0: no "
                       f"projection), got {self.pca_components!r}.")
    for name in positive_ints:
      value = getattr(self, name)
      if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if self.n_neighbors < 2:
      raise ValueError(f"n_neighbors must be >= 2, got {self.n_neighbors}.")
    if self.n_epochs is not None and (not isinstance(self.n_epochs, int)
                                      or self.n_epochs < 1):
      raise ValueError(f"n_epochs must be a positive integer or None, got "
                       f"{self.n_epochs!r}.")
    if self.learning_rate is not None and not self.learning_rate > 0:
      raise ValueError(f"learning_rate must be > 0 or None (chosen from the "
                       f"encoder's input), got {self.learning_rate}.")
    if not 0.0 <= self.neighbor_mixing <= 1.0:
      raise ValueError(f"neighbor_mixing must be in [0, 1] (a fraction of "
                       f"the way to a neighbour), got {self.neighbor_mixing}.")
    if not 0.0 <= self.input_noise < float("inf"):
      raise ValueError(f"input_noise must be a finite number >= 0 (a "
                       f"fraction of the data's feature std; 0: off), got "
                       f"{self.input_noise}.")
    if self.reconstruction_loss not in ("auto", *losses.LIKELIHOODS):
      raise ValueError(f"reconstruction_loss must be 'auto' or one of "
                       f"{losses.LIKELIHOODS}, got {self.reconstruction_loss!r}.")
    self._preset()

  def _preset(self) -> str:
    name = ENCODER_ALIASES.get(self.encoder, self.encoder)
    if name not in PRESETS:
      raise ValueError(f"Unknown encoder {self.encoder!r}: use 'mlp', 'conv' "
                       f"or a preset of latent_jax.models.PRESETS "
                       f"({sorted(PRESETS)}).")
    return name

  def _check_inputs(self, data, what: str = "X") -> np.ndarray:
    """float32 array [N, D] or [N, H, W, C], finite; clear errors if not."""
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
    family = PRESETS[self._preset()]["family"]
    if family == "conv" and array.ndim != 4:
      raise ValueError(f"encoder={self.encoder!r} is convolutional and needs "
                       f"images [N, H, W(, C)]; {what} has shape "
                       f"{array.shape}. Reshape it, or use encoder='mlp'.")
    return array

  def _check_fitted(self, method: str) -> None:
    if not self.is_fitted:
      raise ValueError(f"This ParametricUMAP is not fitted yet: call fit(X) "
                       f"before {method}().")

  def _check_features(self, array: np.ndarray, method: str) -> None:
    if array.shape[1:] != self.input_shape_:
      raise ValueError(
          f"{method}() got inputs of shape {array.shape[1:]} per sample, but "
          f"the model was fitted on {self.input_shape_}.")

  # --- Fit -------------------------------------------------------------------

  def _seed(self) -> int:
    if self.random_state is None:
      self.random_state = int(np.random.default_rng().integers(2**31 - 1))
    return int(self.random_state)

  def _build_graph(self, array: np.ndarray) -> None:
    """kNN + fuzzy graph on the host; sets graph_ and the edge table."""
    started = time.perf_counter()
    flat = array.reshape(len(array), -1)
    indices, distances = graph_lib.nearest_neighbors(
        flat, self.n_neighbors, metric=self.metric,
        random_state=self._seed(),
        brute_force_max_samples=self.brute_force_max_samples,
        verbose=self.verbose)
    self.timings_["knn"] = time.perf_counter() - started
    self._knn_indices = indices
    method = ("exact" if len(flat) <= self.brute_force_max_samples
              and self.metric in graph_lib.BRUTE_FORCE_METRICS
              else "NN-descent")
    self._log(f"kNN ({method}, k={self.n_neighbors}, {self.metric}) on "
              f"{flat.shape[0]} x {flat.shape[1]}: "
              f"{self.timings_['knn']:.2f} s")
    started = time.perf_counter()
    self.graph_ = graph_lib.fuzzy_simplicial_set(
        indices, distances, n_neighbors=self.n_neighbors,
        set_op_mix_ratio=self.set_op_mix_ratio,
        local_connectivity=self.local_connectivity)
    self.edges_ = graph_lib.graph_edges(self.graph_)
    self.timings_["graph"] = time.perf_counter() - started
    self._log(f"fuzzy graph: {len(self.edges_.weight)} directed edges "
              f"({self.graph_.nnz} before pruning): "
              f"{self.timings_['graph']:.2f} s")

  def _full_batch(self, num_points: int) -> bool:
    return num_points <= self.full_batch_max_points

  def _default_umap_steps(self, num_points: int) -> int:
    if (not self._full_batch(num_points)
        or PRESETS[self._preset()]["family"] != "mlp"):
      # Minibatches, or conv encoders (tuned for MLPs; a conv pass over
      # every point costs far more per step).
      return DEFAULT_UMAP_STEPS
    return int(np.clip(round(FULL_BATCH_POINT_BUDGET / num_points),
                       *FULL_BATCH_STEPS))

  def _plan(self, num_points: int, num_edges: int | None
            ) -> TrainingPlan | None:
    """Steps per phase. num_edges None (graph not built yet): the plan if
    it does not depend on the edge count, else None; layout_steps is then
    left at 0 for the caller to set."""
    if self.n_epochs is None and self._full_batch(num_points):
      # Full batch: a number of steps, whatever the edge count.
      umap_steps = self._default_umap_steps(num_points)
    elif num_edges is None:
      return None
    else:
      # Given epochs, or the default steps as epochs within [1, 500].
      n_epochs = self.n_epochs or int(np.clip(
          round(self._default_umap_steps(num_points) * self.batch_size
                / max(num_edges, 1)), 1, 500))
      umap_steps = math.ceil(n_epochs * num_edges / self.batch_size)
    has_targets = self.layout_init or self.spectral_init
    # Regression converges in a bounded number of steps however many points
    # there are (the cap only binds above ~80,000 points).
    init_steps = (min(math.ceil(self.init_epochs * num_points
                                / self._init_batch_size(num_points)),
                      MAX_INIT_STEPS) if has_targets else 0)
    return TrainingPlan(self._layout_steps(num_points, num_edges or 0),
                        init_steps, umap_steps)

  def _layout_steps(self, num_points: int, num_edges: int) -> int:
    return (math.ceil(self.layout_epochs * num_edges
                      / self._layout_batch_size(num_points))
            if self.layout_init else 0)

  def _init_batch_size(self, num_points: int) -> int:
    return min(self.init_batch_size, num_points)

  @staticmethod
  def _layout_batch_size(num_points: int) -> int:
    # About one update per point per step; bounded so steps stay cheap.
    return int(np.clip(num_points, 4096, 65536))

  def _make_optimizer(self, total_steps: int) -> optax.GradientTransformation:
    # Linear decay to zero, like UMAP's own SGD step size: large early steps
    # find the layout, small late ones settle the local neighbourhoods.
    schedule = optax.linear_schedule(self.learning_rate_, 0.0,
                                     max(total_steps, 1))
    betas = dict(b1=ADAM_B1, b2=ADAM_B2)
    optimizer = (optax.adamw(schedule, weight_decay=self.weight_decay,
                             **betas)
                 if self.weight_decay > 0 else optax.adam(schedule, **betas))
    if self.grad_clip_norm > 0:
      optimizer = optax.chain(optax.clip_by_global_norm(self.grad_clip_norm),
                              optimizer)
    return optimizer

  def _reconstruction_likelihood(self, array: np.ndarray) -> str:
    if self.reconstruction_loss != "auto":
      return self.reconstruction_loss
    inside = float(array.min()) >= 0.0 and float(array.max()) <= 1.0
    return "bernoulli" if inside else "gaussian"

  def _setup(self, array: np.ndarray) -> None:
    """Everything `fit` needs before training; no training steps."""
    self._check_hyperparameters()
    if len(array) < self.n_neighbors + 1:
      raise ValueError(
          f"X has {len(array)} samples; n_neighbors={self.n_neighbors} needs "
          f"at least {self.n_neighbors + 1}. Lower n_neighbors or pass more "
          "data.")
    self._a, self._b = find_ab_params(self.spread, self.min_dist)
    for fitted_attribute in ("embedding_", "training_data_"):
      self.__dict__.pop(fitted_attribute, None)  # a refit starts unfitted
    self.timings_ = {}
    self.input_shape_ = tuple(array.shape[1:])
    seed = self._seed()
    num_points = len(array)
    self.reconstruction_likelihood_ = self._reconstruction_likelihood(array)
    self.learning_rate_ = self._learning_rate(array)
    self._model = self._build_model(seed, self._encoder_features(array))
    # Compile while the host builds the graph: XLA needs seconds on a CPU.
    # The edge table is padded to a bound known now (max_edges), the
    # layout's step count is traced, and in full-batch mode the plan does
    # not depend on the graph, so every program's shapes are known here.
    capacity = max_edges(num_points, self.n_neighbors)
    table_shapes = edge_table_shapes(
        capacity, ((num_points, self.n_neighbors) if self.neighbor_mixing > 0
                   else None))
    self._layout_key = jax.random.fold_in(jax.random.key(seed), 1)
    self._layout_compiling = _in_background(
        lambda: self._compile_layout(num_points, table_shapes))
    self.plan_ = self._plan(num_points, None)
    trainer = None
    if self.plan_ is not None:
      trainer = Trainer(self, array, table_shapes)
    self._build_graph(array)
    self.input_projection_ = self._fit_projection(array)
    self.input_noise_std_ = self._input_noise_std(array)
    self._edge_table = make_edge_table(
        self.edges_.head, self.edges_.tail, self.edges_.weight,
        neighbors=self._knn_indices if self.neighbor_mixing > 0 else None,
        capacity=capacity)
    num_edges = len(self.edges_.weight)
    if trainer is None:
      self.plan_ = self._plan(num_points, num_edges)
      trainer = Trainer(self, array, table_shapes)
    self.plan_.layout_steps = self._layout_steps(num_points, num_edges)
    trainer.bind(self._edge_table, self.input_projection_)
    self._pending_trainer = trainer
    self._targets = self._init_targets(num_points, seed)

  def _compile_layout(self, num_points: int, table_shapes) -> None:
    """Compiles the layout program without running it (see _setup)."""
    if self.layout_init:
      self._run_layout(
          jax.ShapeDtypeStruct((num_points, self.n_components), jnp.float32),
          table_shapes, num_steps=0, compile_only=True)

  def _run_layout(self, start, table, num_steps: int,
                  compile_only: bool = False):
    layout = optimize_layout.lower if compile_only else optimize_layout
    result = layout(
        start, table, self._layout_key, a=self._a, b=self._b,
        num_steps=jnp.int32(num_steps),
        batch_size=self._layout_batch_size(start.shape[0]),
        negative_sample_rate=self.negative_sample_rate,
        repulsion_strength=self.repulsion_strength)
    return result.compile() if compile_only else result

  def _learning_rate(self, array: np.ndarray) -> float:
    if self.learning_rate is not None:
      return float(self.learning_rate)
    features = self._encoder_features(array)
    if features is None and PRESETS[self._preset()]["family"] == "mlp":
      features = math.prod(array.shape[1:])
    narrow_mlp = features is not None and features <= NARROW_INPUT_FEATURES
    return 3e-2 if narrow_mlp else 1e-2

  def _encoder_features(self, array: np.ndarray) -> int | None:
    """Features after the PCA in front of an MLP encoder; None: no PCA."""
    num_features = math.prod(array.shape[1:])
    if (PRESETS[self._preset()]["family"] != "mlp"
        or not 0 < 2 * self.pca_components < num_features):
      return None
    return self.pca_components

  def _fit_projection(self, array: np.ndarray) -> InputProjection | None:
    """The PCA in front of an MLP encoder, when the inputs are wider."""
    if self._encoder_features(array) is None:
      return None
    num_features = math.prod(array.shape[1:])
    started = time.perf_counter()
    projection = fit_projection(array.reshape(len(array), -1),
                                self.pca_components)
    self.timings_["pca"] = time.perf_counter() - started
    self._log(f"PCA {num_features} -> {self.pca_components} features for "
              f"the encoder: {self.timings_['pca']:.2f} s")
    return projection

  def _input_noise_std(self, array: np.ndarray) -> float:
    """input_noise x the data's rms feature std, at most one kNN radius.

    - The rms feature std: the root of the mean per-feature variance.
      Noise isotropic in input space keeps this std per component after
      the PCA (orthonormal components).
    - The cap, the kNN radius per feature: the median distance to the
      n_neighbors-th neighbour, where the encoder sees the data, over the
      root of its width, so that the noise vector is at most about one
      kNN radius long.
    Wide data (the 784 pixels of 28 x 28 digits) is bound by the first,
    narrow data (a few features, or the 64-pixel digits) by the cap; either
    rule alone failed one kind of data (see the input_noise argument).
    """
    if self.input_noise == 0:
      return 0.0
    flat = array.reshape(len(array), -1)
    feature_std = np.sqrt(np.mean(flat.var(axis=0, dtype=np.float64)))
    inputs = project(self.input_projection_, flat)
    farthest = self._knn_indices[:, -1]
    radius = np.median(np.linalg.norm(inputs - inputs[farthest], axis=1))
    return float(min(self.input_noise * feature_std,
                     radius / math.sqrt(inputs.shape[1])))

  def _build_model(self, seed: int, encoder_features: int | None):
    """encoder_features: the PCA's output width (None: the raw inputs)."""
    return build_embedder(
        self._preset(), self.input_shape_, self.n_components,
        with_decoder=self.has_decoder, rngs=nnx.Rngs(seed),
        encoder_input_shape=(None if encoder_features is None
                             else (encoder_features,)))

  def _init_targets(self, num_points: int, seed: int) -> np.ndarray | None:
    """Coordinates the init phase regresses onto (None: no init phase)."""
    start = None
    if self.spectral_init:
      started = time.perf_counter()
      start = spectral_coordinates(self.graph_, self.n_components,
                                   random_state=seed)
      self.timings_["spectral"] = time.perf_counter() - started
      self._log(f"spectral embedding: {self.timings_['spectral']:.2f} s"
                + (" (failed: random start)" if start is None else ""))
    if not self.layout_init:
      if start is None:
        self.plan_.init_steps = 0
      return start
    if start is None:
      start = np.random.default_rng(seed).uniform(
          -10, 10, (num_points, self.n_components)).astype(np.float32)
    started = time.perf_counter()
    self._layout_compiling.join()  # else it would compile a second time
    layout = np.asarray(self._run_layout(
        jax.device_put(rescale_to_box(start).astype(np.float32)),
        self._edge_table,
        self.plan_.layout_steps))
    self.timings_["layout"] = time.perf_counter() - started
    self._log(f"layout: {self.plan_.layout_steps} steps of "
              f"{self._layout_batch_size(num_points)} edges: "
              f"{self.timings_['layout']:.2f} s")
    return layout

  def fit(self, X, y=None) -> "ParametricUMAP":
    """Builds the graph of X and trains the encoder (and decoder) on it."""
    del y  # unsupervised; accepted for scikit-learn pipelines
    array = self._check_inputs(X)
    started = time.perf_counter()
    self._setup(array)
    trainer = self.make_trainer(array)
    state = trainer.init_state()
    state = trainer.run(state)
    trainer.finalize(state)
    self.timings_["total"] = time.perf_counter() - started
    self._log(f"fit: {self.timings_['total']:.2f} s in all")
    return self

  def fit_transform(self, X, y=None) -> np.ndarray:
    """Fits, then returns the embedding of X, [N, n_components]."""
    return self.fit(X, y).embedding_

  def make_trainer(self, array: np.ndarray) -> "Trainer":
    """The training loop over `array` (after `_setup`); see `Trainer`."""
    trainer = self.__dict__.pop("_pending_trainer", None)
    if (trainer is None or trainer.array is not array
        or trainer.planned_steps != self.plan_.total_steps):
      # E.g. the init phase was dropped: rebuild for the new step count.
      trainer = Trainer(self, array, jax.tree.map(
          lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), self._edge_table))
      trainer.bind(self._edge_table, self.input_projection_)
    trainer.set_targets(self._targets)
    return trainer

  # --- Transform ----------------------------------------------------------

  def _apply(self, what: str, inputs: np.ndarray,
             batch_size: int = 4096) -> np.ndarray:
    """`what` ("embed" / "decode:<likelihood>") over fixed-size batches."""
    graphdef, params = nnx.split(self._model)
    apply = _compiled_apply(graphdef, what)
    # On the device once, not copied with every batch.
    projection = (jax.device_put(self.input_projection_) if what == "embed"
                  and self.input_projection_ is not None else None)
    batch_size = min(batch_size, len(inputs))
    outputs = []
    for start in range(0, len(inputs), batch_size):
      batch = inputs[start:start + batch_size]
      stop = len(batch)
      if stop < batch_size:
        batch = np.concatenate(
            [batch, np.zeros((batch_size - stop, *batch.shape[1:]),
                             batch.dtype)])
      # Sliced and joined in NumPy (eager JAX ops compile per shape).
      outputs.append(np.asarray(apply(params, projection, batch))[:stop])
    return np.concatenate(outputs)

  def transform(self, X, method: str = "encoder") -> np.ndarray:
    """Embeds new data: [N, n_components].

    method: "encoder" (the trained network, jitted and batched: the
    parametric transform), or "refine": the encoder's output refined
    against the fixed training embedding as umap-learn's `transform` does
    (each point's kNN among the training data, then UMAP's cross-entropy;
    refine.py). "refine" needs the training data and costs a kNN search of
    it; on small training sets it places held-out points better (digits,
    seeds 0-6: held-out trustworthiness 0.960 -> 0.975, 5-NN accuracy
    0.941 -> 0.964; umap-learn's transform 0.973 / 0.962).
    """
    self._check_fitted("transform")
    if method not in ("encoder", "refine"):
      raise ValueError(f"method must be 'encoder' or 'refine', got "
                       f"{method!r}.")
    array = self._check_inputs(X)
    self._check_features(array, "transform")
    embedding = self._apply("embed", array)
    if method == "refine":
      embedding = self._refine(array, embedding)
    return embedding

  def _refine(self, array: np.ndarray, start: np.ndarray,
              batch_size: int = 4096) -> np.ndarray:
    if self.training_data_ is None:
      raise ValueError("transform(method='refine') needs the training data, "
                       "which this model was saved without; use "
                       "method='encoder'.")
    started = time.perf_counter()
    train = self.training_data_.reshape(len(self.training_data_), -1)
    indices, distances = graph_lib.query_neighbors(
        train, array.reshape(len(array), -1), self.n_neighbors,
        metric=self.metric, random_state=self._seed())
    memberships = graph_lib.query_memberships(distances, self.n_neighbors)
    self._log(f"refine: kNN of {len(array)} points among {len(train)}: "
              f"{time.perf_counter() - started:.2f} s")
    embedding = jax.device_put(self.embedding_)
    key = jax.random.key(self._seed())
    batch_size = min(batch_size, len(array))
    # Padding rows have no memberships: no gradient, one compiled shape.
    pad = lambda v: np.pad(v, [(0, batch_size - len(v))]
                           + [(0, 0)] * (v.ndim - 1))
    outputs = []
    for start_row in range(0, len(array), batch_size):
      rows = slice(start_row, start_row + batch_size)
      refined = refine_positions(
          pad(start[rows]), pad(self.embedding_[indices[rows]]),
          pad(memberships[rows]), embedding,
          jax.random.fold_in(key, start_row), a=self._a,
          b=self._b, negative_sample_rate=self.negative_sample_rate,
          repulsion_strength=self.repulsion_strength)
      outputs.append(np.asarray(refined)[:len(start[rows])])
    self._log(f"refine: {len(array)} points: "
              f"{time.perf_counter() - started:.2f} s")
    return np.concatenate(outputs)

  def inverse_transform(self, embedding, method: str = "auto") -> np.ndarray:
    """Points in the embedding -> data space, shaped like the inputs.

    method: "decoder" (the trained decoder, jitted and batched),
    "interpolate" (seed 000's method: weighted average of the training
    points around the point's Delaunay simplex), or "auto" (the decoder
    when one was trained). Points outside the convex hull of `embedding_`
    get a warning: inverse maps are unreliable there.
    """
    self._check_fitted("inverse_transform")
    if method not in ("auto", "decoder", "interpolate"):
      raise ValueError(f"method must be 'auto', 'decoder' or 'interpolate', "
                       f"got {method!r}.")
    points = np.asarray(embedding, np.float32)
    if points.ndim == 1 and points.shape[0] == self.n_components:
      points = points[None]
    if points.ndim != 2 or points.shape[1] != self.n_components:
      raise ValueError(
          f"inverse_transform() needs points of shape [n, {self.n_components}]"
          f" (n_components={self.n_components}); got {points.shape}.")
    if not np.all(np.isfinite(points)):
      raise ValueError("inverse_transform() got NaN or Inf coordinates.")
    inverse.warn_outside_hull(self.embedding_, points)
    if method == "decoder" and not self.has_decoder:
      raise ValueError("method='decoder' needs a decoder: fit with "
                       "parametric_reconstruction=True (or decoder=True).")
    if method == "interpolate" or not self.has_decoder:
      if self.training_data_ is None:
        raise ValueError("method='interpolate' needs the training data, "
                         "which this model was saved without.")
      return inverse.interpolate(self.embedding_, self.training_data_, points,
                                 a=self._a, b=self._b,
                                 n_neighbors=self.n_neighbors)
    return self._apply(f"decode:{self.reconstruction_likelihood_}", points)

  # --- Save / load --------------------------------------------------------

  def save(self, path: str, *, include_training_data: bool = True) -> None:
    """Writes hyperparameters (JSON), parameters (orbax) and arrays (.npy).

    No pickled code: the model is rebuilt from the hyperparameters on load.
    The training data is needed only by the interpolating inverse
    transform; leave it out of large models with include_training_data=False.
    """
    self._check_fitted("save")
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    path = os.path.abspath(path)
    os.makedirs(path, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "hyperparameters": self.get_params(),
        "input_shape": list(self.input_shape_),
        "a": self._a, "b": self._b,
        "reconstruction_likelihood": self.reconstruction_likelihood_,
        "loss_history": [float(v) for v in self.loss_history_],
    }
    with open(os.path.join(path, HYPERPARAMETERS_FILE), "w") as file:
      json.dump(meta, file, indent=2)
    params = nnx.state(self._model, nnx.Param)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.join(path, "params"), params, force=True)
    checkpointer.wait_until_finished()
    np.save(os.path.join(path, "embedding.npy"), self.embedding_,
            allow_pickle=False)
    if include_training_data and self.training_data_ is not None:
      np.save(os.path.join(path, "training_data.npy"), self.training_data_,
              allow_pickle=False)
    scipy.sparse.save_npz(os.path.join(path, "graph.npz"),
                          scipy.sparse.csr_matrix(self.graph_))
    if self.input_projection_ is not None:
      for name, values in self.input_projection_._asdict().items():
        np.save(os.path.join(path, f"pca_{name}.npy"), values,
                allow_pickle=False)

  @classmethod
  def load(cls, path: str) -> "ParametricUMAP":
    """Rebuilds a saved model; transform/inverse_transform work at once."""
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    path = os.path.abspath(path)
    meta_path = os.path.join(path, HYPERPARAMETERS_FILE)
    if not os.path.exists(meta_path):
      raise FileNotFoundError(f"No {HYPERPARAMETERS_FILE} in {path}: is it a "
                              "directory written by ParametricUMAP.save?")
    with open(meta_path) as file:
      meta = json.load(file)
    reducer = cls(**meta["hyperparameters"])
    reducer.input_shape_ = tuple(meta["input_shape"])
    reducer._a, reducer._b = meta["a"], meta["b"]
    reducer.reconstruction_likelihood_ = meta["reconstruction_likelihood"]
    reducer.loss_history_ = meta["loss_history"]
    reducer.input_projection_ = None
    if os.path.exists(os.path.join(path, "pca_mean.npy")):
      reducer.input_projection_ = InputProjection(*(
          np.load(os.path.join(path, f"pca_{name}.npy"))
          for name in InputProjection._fields))
    projection = reducer.input_projection_
    model = reducer._build_model(
        0, None if projection is None else projection.components.shape[1])
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                            nnx.state(model, nnx.Param))
    params = ocp.StandardCheckpointer().restore(os.path.join(path, "params"),
                                                abstract)
    nnx.update(model, params)
    reducer._model = model
    reducer.embedding_ = np.load(os.path.join(path, "embedding.npy"))
    data_path = os.path.join(path, "training_data.npy")
    reducer.training_data_ = (np.load(data_path) if os.path.exists(data_path)
                              else None)
    reducer.graph_ = scipy.sparse.load_npz(os.path.join(path, "graph.npz"))
    return reducer


@functools.lru_cache(maxsize=32)
def _compiled_apply(graphdef: nnx.GraphDef, what: str) -> Callable:
  """Jitted `(params, projection, batch) -> outputs` for "embed" or
  "decode:<likelihood>" (projection: the encoder's PCA, or None)."""
  def apply(params, projection, batch):
    model = nnx.merge(graphdef, params)
    if what == "embed":
      return model.embed(project(projection, batch))
    return losses.decoder_mean(what.split(":")[1], model.decode(batch))
  return jax.jit(apply)


def _in_background(compile_programs: Callable[[], None]) -> threading.Thread:
  """Runs `compile_programs` on a daemon thread; join it before the
  programs run. A failure is left for the real call to raise again."""
  def guarded():
    try:
      compile_programs()
    except Exception:  # pylint: disable=broad-except
      pass
  thread = threading.Thread(target=guarded, daemon=True)
  thread.start()
  return thread


class Trainer:
  """The training loop of a `ParametricUMAP`, stepwise so callers can hook in.

  `fit` runs it start to end. The experiment runner (latent_jax.umap.
  experiment) uses the same object with checkpoints, metrics and SIGTERM:
  `init_state()` -> [restore] -> `run(state, on_chunk, should_stop)`.
  """

  def __init__(self, reducer: ParametricUMAP, array: np.ndarray,
               table_shapes: EdgeTable):
    """Builds the programs and starts compiling them on a background thread
    (for `table_shapes`: what `bind` will pass); `bind` and `set_targets`
    then give it the graph and the layout."""
    self.reducer = reducer
    self.plan = reducer.plan_
    self.graphdef, params = nnx.split(reducer._model)
    self.planned_steps = self.plan.total_steps
    self.optimizer = reducer._make_optimizer(self.planned_steps)
    self._initial_params = params
    settings = UMAPLossSettings(
        a=reducer._a, b=reducer._b,
        negative_sample_rate=reducer.negative_sample_rate,
        repulsion_strength=reducer.repulsion_strength,
        reconstruction_weight=(reducer.reconstruction_weight
                               if reducer.has_decoder else 0.0),
        reconstruction_likelihood=reducer.reconstruction_likelihood_,
        autoencoder_loss=reducer.autoencoder_loss,
        global_correlation_loss_weight=(
            reducer.global_correlation_loss_weight),
        full_batch=reducer._full_batch(len(array)),
        neighbor_mixing=reducer.neighbor_mixing,
        input_noise=reducer.input_noise > 0)
    chunk_mode = reducer.chunk_mode
    if chunk_mode == "auto" and PRESETS[reducer._preset()]["family"] == "mlp":
      chunk_mode = "device_loop"  # no conv weight gradients to slow a loop
    self.chunk = make_umap_chunk(self.graphdef, self.optimizer, settings,
                                 batch_size=reducer.batch_size,
                                 init_batch_size=reducer._init_batch_size(
                                     len(array)),
                                 chunk_mode=chunk_mode)
    self.array = array
    self.table = self.data = None  # bind()
    self.targets = None  # set_targets, once the layout is known
    self.key = jax.random.key(reducer._seed())
    reducer.loss_history_ = []
    bank_shape = self._noise_bank_shape()
    data_shapes = TrainingData(
        inputs=jax.ShapeDtypeStruct((len(array), *bank_shape[1:]),
                                    jnp.float32),
        originals=jax.ShapeDtypeStruct(array.shape, jnp.float32),
        noise_bank=jax.ShapeDtypeStruct(bank_shape, jnp.float32))
    self._compiling = _in_background(
        lambda: self._precompile(data_shapes, table_shapes))

  def _precompile(self, data_shapes: TrainingData, table_shapes: EdgeTable
                  ) -> None:
    """Compiles each phase's program (runs on a background thread)."""
    state = self.init_state()
    targets = jax.ShapeDtypeStruct(
        (len(self.array), self.reducer.n_components), jnp.float32)
    for phase in PHASES:
      if self.plan.phase_steps(phase):
        self.chunk.precompile(state, phase, data_shapes, table_shapes,
                              targets, self.key)

  def bind(self, table: EdgeTable, projection: InputProjection | None
           ) -> None:
    """The edge table (shaped as announced) and the encoder's PCA; puts
    the training data and the input-noise bank on the device."""
    self.table = table
    originals = jax.device_put(self.array)
    rows, *point_shape = self._noise_bank_shape()
    # Its own stream of the fit's seed (the layout's start draws from
    # default_rng(seed)).
    bank = noise_bank(rows, tuple(point_shape),
                      self.reducer.input_noise_std_,
                      np.random.default_rng([self.reducer._seed(), 2]))
    self.data = TrainingData(
        inputs=(originals if projection is None
                else jax.device_put(project(projection, self.array))),
        originals=originals, noise_bank=jax.device_put(bank))

  def _noise_bank_shape(self) -> tuple[int, ...]:
    """(rows, *one encoder input's shape); no rows if the noise is off."""
    reducer = self.reducer
    features = reducer._encoder_features(self.array)
    point_shape = (self.array.shape[1:] if features is None
                   else (features,))
    return (NOISE_BANK_SIZE if reducer.input_noise > 0 else 0, *point_shape)

  def set_targets(self, targets: np.ndarray | None) -> None:
    """What the init phase regresses onto (None: no init phase)."""
    self.targets = jax.device_put(np.asarray(
        np.zeros((len(self.array), self.reducer.n_components))
        if targets is None else targets, np.float32))

  def init_state(self) -> TrainState:
    return init_train_state(self._initial_params, self.optimizer)

  def run(self, state: TrainState, on_chunk: Callable | None = None,
          should_stop: Callable[[], bool] | None = None,
          boundaries: Callable[[int], int] | None = None) -> TrainState:
    """Trains from `state.step` to the end of the plan.

    on_chunk(step, phase, metrics, state) is called after each chunk;
    should_stop() ends training early (after the current step);
    boundaries(step) may return an earlier chunk end (log/checkpoint
    cadence) than the phase end and `steps_per_call`.
    """
    reducer, plan = self.reducer, self.plan
    if self.targets is None or self.data is None:
      raise ValueError("Trainer.run needs bind and set_targets first "
                       "(ParametricUMAP._setup and make_trainer do them).")
    self._compiling.join()
    step = int(state.step)
    started = time.perf_counter()
    umap_seconds, umap_steps = 0.0, 0  # for edges/s of the sampled phase
    announced = None
    while step < plan.total_steps:
      phase, phase_end = plan.phase_at(step)
      if phase != announced:
        reducer._log(f"phase {phase}: steps {step}..{phase_end} "
                     f"(batch {reducer.batch_size})")
        announced = phase
      end = min(phase_end, step + reducer.steps_per_call)
      if boundaries is not None:
        end = min(end, boundaries(step))
      chunk_started = time.perf_counter()
      state, metrics = self.chunk(state, phase, self.data, self.table,
                                  self.targets, self.key, end - step,
                                  should_stop)
      metrics = jax.device_get(metrics)  # waits for the chunk
      taken = int(metrics["num_steps"])
      if phase == "umap":
        umap_seconds += time.perf_counter() - chunk_started
        umap_steps += taken
      if metrics["first_nonfinite_step"] >= 0:
        raise FloatingPointError(
            f"Non-finite loss or gradient at step "
            f"{int(metrics['first_nonfinite_step'])} ({phase} phase). Lower "
            "learning_rate or grad_clip_norm.")
      step += taken
      if taken and phase == "umap":
        reducer.loss_history_.append(float(metrics["loss"]))
      if taken:
        reducer._log(f"  step {step}/{plan.total_steps} | {phase} loss "
                     f"{float(metrics['loss']):.4f} | "
                     f"{time.perf_counter() - started:.1f} s")
      if on_chunk is not None and taken:
        on_chunk(step, phase, metrics, state)
      if should_stop is not None and should_stop():
        break
    elapsed = time.perf_counter() - started
    reducer.timings_["train"] = reducer.timings_.get("train", 0.0) + elapsed
    reducer.edges_per_second_ = (umap_steps * reducer.batch_size
                                 / max(umap_seconds, 1e-9))
    return state

  def finalize(self, state: TrainState) -> None:
    """Puts the trained parameters into the model; embeds the training data."""
    reducer = self.reducer
    nnx.update(reducer._model, state.params)
    reducer.training_data_ = self.array
    reducer.embedding_ = reducer._apply("embed", self.array)
