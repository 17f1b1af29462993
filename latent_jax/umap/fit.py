"""One Parametric UMAP fit, stepwise: prepare -> phases (the engine) -> finish.

    fit = Fit(hyperparameters, X, seed)   # graph, layout; programs compile
    state = fit.init_state()              # or a restored checkpoint
    state = runner.train(state, fit.phases(), cadence, ...)
    result = fit.finish(state)            # FitResult: model, embedding_, ...

`ParametricUMAP.fit` runs it start to end; a UMAP run (runs/umap.py) adds
checkpoints, metrics and SIGTERM through the same engine. A fit reads a
frozen copy of the estimator's hyperparameters and never touches the
estimator itself.

Pipeline: validate -> [a second thread compiles the layout and training
programs, whose shapes are known from N and k alone: the edge table is
padded to its bound 2 N k and the layout's step count is traced] -> kNN +
fuzzy graph (host, graph.py) -> PCA for wide inputs (projection.py) ->
input-noise scale -> init targets: spectral embedding (spectral.py) refined
into UMAP's layout on the device (layout.py) -> the phases (phases.py).

The training programs come from programs.py's cache, so refits with the
same settings and data shapes compile nothing; `progress.Progress` books
every stage's wall time (`timings`).
"""

from __future__ import annotations

import threading
import types
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
from flax import nnx

from latent_jax.models.embedding import build_embedder
from latent_jax.train.chunk import TrainState, init_train_state
from latent_jax.train.runner import Phase
from latent_jax.umap import graph as graph_lib
from latent_jax.umap import plan as plan_lib
from latent_jax.umap.apply import apply_in_batches
from latent_jax.umap.curve import find_ab_params
from latent_jax.umap.layout import layout_program, rescale_to_box
from latent_jax.umap.phases import (PHASES, PhaseInputs, TrainingData,
                                    UMAPLossSettings)
from latent_jax.umap.programs import OptimizerSettings, phase_programs
from latent_jax.umap.progress import Progress
from latent_jax.umap.projection import (InputProjection, fit_projection,
                                        project)
from latent_jax.umap.sampling import (EdgeTable, edge_table_shapes,
                                      make_edge_table, max_edges, noise_bank)
from latent_jax.umap.spectral import spectral_coordinates


class FitResult(NamedTuple):
  """What a finished fit hands the estimator (its fitted attributes)."""
  model: nnx.Module                  # encoder (+ decoder), trained
  embedding: np.ndarray              # [N, n_components] of the training data
  training_data: np.ndarray          # [N, ...] float32, as fitted
  graph: scipy.sparse.csr_matrix     # [N, N] fuzzy kNN graph
  edges: graph_lib.Edges             # the sampled edge list (pruned graph)
  input_projection: InputProjection | None
  input_noise_std: float
  plan: plan_lib.TrainingPlan
  a: float
  b: float
  reconstruction_likelihood: str
  learning_rate: float
  seed: int
  timings: dict[str, float]          # seconds per stage; sum: the fit's wall
  loss_history: list[float]          # UMAP-phase mean loss per chunk
  edges_per_second: float            # edges scored per second of the phase


def build_model(hp: Mapping[str, Any], input_shape: tuple[int, ...],
                encoder_features: int | None, seed: int) -> nnx.Module:
  """The embedder; encoder_features: the PCA's width (None: raw inputs)."""
  return build_embedder(
      plan_lib.preset(hp), input_shape, hp["n_components"],
      with_decoder=plan_lib.has_decoder(hp), rngs=nnx.Rngs(seed),
      encoder_input_shape=(None if encoder_features is None
                           else (encoder_features,)))


def _in_background(compile_programs: Callable[[], None]) -> threading.Thread:
  """Runs `compile_programs` on a daemon thread; a failure is left for the
  real call to raise again."""
  def guarded():
    try:
      compile_programs()
    except Exception:  # pylint: disable=broad-except
      pass
  thread = threading.Thread(target=guarded, daemon=True)
  thread.start()
  return thread


class Fit:
  """Everything one fit needs, built from (hyperparameters, data, seed)."""

  def __init__(self, hyperparameters: Mapping[str, Any], array: np.ndarray,
               seed: int, progress: Progress | None = None,
               output_dtype: np.dtype = np.dtype(np.float32)):
    """array: validated float32 [N, D] or [N, H, W, C]; progress: the
    clock, started where the fit's time should count from; output_dtype:
    the dtype `fit_transform` hands the embedding back in."""
    hp = self.hp = types.MappingProxyType(dict(hyperparameters))
    self.array, self.seed = array, int(seed)
    self.output_dtype = np.dtype(output_dtype)
    self.progress = progress or Progress(hp["verbose"])
    self.log = self.progress.log
    self.timings = self.progress.timings  # seconds per stage, booked by laps
    self.loss_history: list[float] = []
    self._umap_seconds, self._umap_steps = 0.0, 0
    num_points, k = len(array), hp["n_neighbors"]
    if num_points < k + 1:
      raise ValueError(
          f"X has {num_points} samples; n_neighbors={k} needs at least "
          f"{k + 1}. Lower n_neighbors or pass more data.")
    self.a, self.b = find_ab_params(hp["spread"], hp["min_dist"])
    self.input_shape = tuple(array.shape[1:])
    self.likelihood = plan_lib.reconstruction_likelihood(hp, array)
    self.learning_rate = plan_lib.learning_rate(hp, self.input_shape)
    self.encoder_features = plan_lib.encoder_features(hp, self.input_shape)
    self.model = build_model(hp, self.input_shape, self.encoder_features,
                             self.seed)
    self.graphdef, self._initial_params = nnx.split(self.model)
    self.key = jax.random.key(self.seed)
    self.layout_key = jax.random.fold_in(self.key, 1)
    # Compile while the host builds the graph: XLA needs seconds on a CPU.
    capacity = max_edges(num_points, k)
    pairs = plan_lib.full_batch(hp, num_points)  # scored every step
    table_shapes = edge_table_shapes(
        capacity, (num_points, k) if hp["neighbor_mixing"] > 0 else None,
        num_points=num_points, pairs=pairs)
    self._compiling = [_in_background(
        lambda: self._compile_layout(table_shapes))]
    self.plan = plan_lib.plan(hp, num_points, None)
    if self.plan is not None:
      self._build_chunks(table_shapes)
    self.progress.lap("setup")

    self._build_graph()
    self.input_projection = self._fit_projection()
    self.input_noise_std = plan_lib.input_noise_std(
        hp, array, self.input_projection, self.knn_indices)
    self.table = make_edge_table(
        self.edges.head, self.edges.tail, self.edges.weight,
        neighbors=self.knn_indices if hp["neighbor_mixing"] > 0 else None,
        capacity=capacity, num_points=num_points, pairs=pairs)
    num_edges = len(self.edges.weight)
    if self.plan is None:
      self.plan = plan_lib.plan(hp, num_points, num_edges)
      self._build_chunks(table_shapes)
    self.progress.lap("edges")
    planned = self.plan.total_steps
    self.plan = self.plan._replace(
        layout_steps=plan_lib.layout_steps(hp, num_points, num_edges))
    targets = self._init_targets()
    if targets is None:
      self.plan = self.plan._replace(init_steps=0)
    if self.plan.total_steps != planned:
      # The init phase was dropped: the schedule spans fewer steps.
      self._build_chunks(table_shapes, precompile=False)
    self.data = self._training_data()
    self.targets = jax.device_put(np.asarray(
        np.zeros((num_points, hp["n_components"])) if targets is None
        else targets, np.float32))
    self.progress.lap("transfer")

  # --- programs --------------------------------------------------------------

  def _build_chunks(self, table_shapes: EdgeTable, precompile: bool = True
                    ) -> None:
    """One chunk per phase for the current plan; compiled on a thread."""
    hp = self.hp
    settings = UMAPLossSettings(
        a=self.a, b=self.b, negative_sample_rate=hp["negative_sample_rate"],
        repulsion_strength=hp["repulsion_strength"],
        reconstruction_weight=(hp["reconstruction_weight"]
                               if plan_lib.has_decoder(hp) else 0.0),
        reconstruction_likelihood=self.likelihood,
        autoencoder_loss=hp["autoencoder_loss"],
        global_correlation_loss_weight=hp["global_correlation_loss_weight"],
        full_batch=plan_lib.full_batch(hp, len(self.array)),
        negative_draws=hp["negative_draws"],
        final_augmentation=float(hp["final_augmentation"]),
        total_steps=self.plan.total_steps,
        neighbor_mixing=hp["neighbor_mixing"],
        input_noise=hp["input_noise"] > 0)
    mode = hp["chunk_mode"]
    if mode == "auto" and plan_lib.family(hp) == "mlp":
      mode = "device_loop"  # no conv weight gradients to slow a loop
    self.optimizer, self.chunks = phase_programs(
        self.graphdef,
        OptimizerSettings(float(self.learning_rate), self.plan.total_steps,
                          float(hp["weight_decay"]),
                          float(hp["grad_clip_norm"])),
        settings, hp["batch_size"],
        plan_lib.init_batch_size(hp, len(self.array)), mode)
    if precompile:
      self._compiling.append(_in_background(
          lambda: self._precompile(table_shapes)))

  def _bank_shape(self) -> tuple[int, ...]:
    """(rows, *one encoder input's shape); no rows if the noise is off."""
    point = (self.input_shape if self.encoder_features is None
             else (self.encoder_features,))
    rows = plan_lib.NOISE_BANK_SIZE if self.hp["input_noise"] > 0 else 0
    return (rows, *point)

  def _precompile(self, table_shapes: EdgeTable) -> None:
    num_points = len(self.array)
    bank = self._bank_shape()
    spec = jax.ShapeDtypeStruct
    inputs = PhaseInputs(
        TrainingData(inputs=spec((num_points, *bank[1:]), jnp.float32),
                     originals=spec(self.array.shape, jnp.float32),
                     noise_bank=spec(bank, jnp.float32)),
        table_shapes,
        spec((num_points, self.hp["n_components"]), jnp.float32), self.key)
    state = self.init_state()
    steps = {"init": self.plan.init_steps, "umap": self.plan.umap_steps}
    for phase in PHASES:
      if steps[phase]:
        self.chunks[phase].precompile(state, inputs)

  def _compile_layout(self, table_shapes: EdgeTable) -> None:
    if self.hp["layout_init"]:
      self._run_layout(jax.ShapeDtypeStruct(
          (len(self.array), self.hp["n_components"]), jnp.float32),
                       table_shapes, 0, compile_only=True)

  def _run_layout(self, start, table, num_steps: int,
                  compile_only: bool = False):
    layout = layout_program().lower if compile_only else layout_program()
    result = layout(
        start, table, self.layout_key, a=self.a, b=self.b,
        num_steps=jnp.int32(num_steps),
        batch_size=plan_lib.layout_batch_size(start.shape[0]),
        negative_sample_rate=self.hp["negative_sample_rate"],
        repulsion_strength=self.hp["repulsion_strength"])
    return result.compile() if compile_only else result

  def join(self) -> None:
    """Waits for the compile-ahead threads and drops them."""
    for thread in self._compiling:
      thread.join()
    self._compiling = []

  # --- host pipeline -----------------------------------------------------------

  def _build_graph(self) -> None:
    """kNN + fuzzy graph on the host."""
    hp, flat = self.hp, self.array.reshape(len(self.array), -1)
    self.knn_indices, distances = graph_lib.nearest_neighbors(
        flat, hp["n_neighbors"], metric=hp["metric"],
        random_state=self.seed,
        brute_force_max_samples=hp["brute_force_max_samples"],
        verbose=hp["verbose"])
    method = ("exact" if len(flat) <= hp["brute_force_max_samples"]
              and hp["metric"] in graph_lib.BRUTE_FORCE_METRICS
              else "NN-descent")
    self.log(f"kNN ({method}, k={hp['n_neighbors']}, {hp['metric']}) on "
             f"{flat.shape[0]} x {flat.shape[1]}: "
             f"{self.progress.lap('knn'):.2f} s")
    self.graph = graph_lib.fuzzy_simplicial_set(
        self.knn_indices, distances, n_neighbors=hp["n_neighbors"],
        set_op_mix_ratio=hp["set_op_mix_ratio"],
        local_connectivity=hp["local_connectivity"])
    self.edges = graph_lib.graph_edges(self.graph)
    self.log(f"fuzzy graph: {len(self.edges.weight)} directed edges "
             f"({self.graph.nnz} before pruning): "
             f"{self.progress.lap('graph'):.2f} s")

  def _fit_projection(self) -> InputProjection | None:
    """The PCA in front of an MLP encoder, when the inputs are wider."""
    if self.encoder_features is None:
      return None
    flat = self.array.reshape(len(self.array), -1)
    projection = fit_projection(flat, self.encoder_features)
    self.log(f"PCA {flat.shape[1]} -> {self.encoder_features} features for "
             f"the encoder: {self.progress.lap('pca'):.2f} s")
    return projection

  def _init_targets(self) -> np.ndarray | None:
    """Coordinates the init phase regresses onto (None: no init phase)."""
    hp, num_points = self.hp, len(self.array)
    start = None
    if hp["spectral_init"]:
      start = spectral_coordinates(self.graph, hp["n_components"],
                                   random_state=self.seed)
      self.log(f"spectral embedding: {self.progress.lap('spectral'):.2f}"
               " s" + (" (failed: random start)" if start is None else ""))
    if not hp["layout_init"]:
      return start
    if start is None:
      start = np.random.default_rng(self.seed).uniform(
          -10, 10, (num_points, hp["n_components"])).astype(np.float32)
    self._compiling[0].join()  # the layout program, else compiled twice
    self.progress.lap("compile")
    layout = np.asarray(self._run_layout(
        jax.device_put(rescale_to_box(start).astype(np.float32)), self.table,
        self.plan.layout_steps))
    self.log(f"layout: {self.plan.layout_steps} steps of "
             f"{plan_lib.layout_batch_size(num_points)} edges: "
             f"{self.progress.lap('layout'):.2f} s")
    return layout

  def _training_data(self) -> TrainingData:
    """The training set and the input-noise bank, on the device."""
    originals = jax.device_put(self.array)
    rows, *point = self._bank_shape()
    # Its own stream of the seed (the layout's start draws from
    # default_rng(seed)).
    bank = noise_bank(rows, tuple(point), self.input_noise_std,
                      np.random.default_rng([self.seed, 2]))
    inputs = (originals if self.input_projection is None else
              jax.device_put(project(self.input_projection, self.array)))
    return TrainingData(inputs=inputs, originals=originals,
                        noise_bank=jax.device_put(bank))

  # --- the engine's side ---------------------------------------------------------

  def init_state(self) -> TrainState:
    """Step 0: the initial parameters and a fresh optimiser state."""
    return init_train_state(self._initial_params, self.optimizer)

  def _spans(self) -> dict[str, tuple[int, int]]:
    """Each phase's [first, end) global steps."""
    return {"init": (0, self.plan.init_steps),
            "umap": (self.plan.init_steps, self.plan.total_steps)}

  def phases(self) -> list[Phase]:
    """The phases with steps, for `runner.train` (compilation joined)."""
    self.join()
    self.progress.lap("compile")
    inputs = PhaseInputs(self.data, self.table, self.targets, self.key)
    spans = self._spans()
    return [Phase(phase, spans[phase][1], self.chunks[phase], inputs)
            for phase in PHASES if spans[phase][1] > spans[phase][0]]

  def record_chunk(self, step: int, phase: str, means: dict, taken: int,
                   seconds: float) -> None:
    """The runner's `after_chunk` hook: loss history, speed, progress."""
    if phase == "umap":
      self.loss_history.append(float(means["loss"]))
      self._umap_seconds += seconds
      self._umap_steps += taken
    first, end = self._spans()[phase]
    self.progress.chunk(phase, taken, step - first, end - first,
                        float(means["loss"]))

  def finish(self, state: TrainState) -> FitResult:
    """The trained model and the training data's embedding."""
    self.join()
    nnx.update(self.model, state.params)
    embedding = apply_in_batches(self.model, "embed", self.array,
                                 self.input_projection)
    self.progress.lap("finish")
    return FitResult(
        self.model, embedding, self.array,
        scipy.sparse.csr_matrix(self.graph), self.edges,
        self.input_projection,
        self.input_noise_std, self.plan, self.a, self.b, self.likelihood,
        self.learning_rate, self.seed, dict(self.timings),
        list(self.loss_history),
        self._umap_steps * self.hp["batch_size"]
        / max(self._umap_seconds, 1e-9))
