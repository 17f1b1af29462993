"""The parametric UMAP's two training phases, as updates for the engine.

Two phases share one optimiser state and one step counter:

- "init" (optional; paraDime's spectral-regression phase): regress the
  encoder's output onto target coordinates (UMAP's layout of the graph,
  layout.py, or its spectral embedding), with batches of points drawn
  uniformly. It gives the network UMAP's layout before the sampled loss
  takes over.
- "umap": minimises UMAP's cross-entropy (plus the optional reconstruction
  and global-correlation terms), with every random draw made by
  `jax.random` inside the program:
  - full batch (small data: every point is embedded each step): every edge
    is scored with its weight, and each point meets `negative_draws`
    uniform negatives (`shifted_negatives`;
    `losses.umap_weighted_cross_entropy`): the sampled loss's expectation
    over edges, without its variance;
  - minibatches: `batch_size` edges drawn by weight, each head paired with
    `negative_draws` ends of the step's other edges, weighted to uniform
    (`in_batch_negatives`): 2 * batch_size points embedded per step
    rather than (2 + M) * batch_size, or 3 * batch_size with a separate
    uniform pool.
  In both, the repulsion weighs `negative_sample_rate` negatives per edge,
  estimated by the mean over the draws: the rate sets the objective, the
  draws only its variance, which is what limits local structure when few
  uniform negatives land near a point.

Augmentation (neighbor_mixing, input_noise) scales from 1 at step 0 to
`final_augmentation` at the last step: a smooth map early, a close fit of
the training points at the end when it is below 1.

Randomness depends only on (key, step), so a resumed run replays the steps
an uninterrupted run would take. The engine (latent_jax/train/chunk.py)
runs the steps, many per host call; this module only supplies them.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from latent_jax import losses
from latent_jax.train.chunk import TrainState, Update
from latent_jax.umap.sampling import (EdgeTable, draw_bits, edges_from_bits,
                                      index_from_bits, mix, mixing_from_bits,
                                      noise_from_bits)

PHASES = ("init", "umap")


class TrainingData(NamedTuple):
  """The training set on the device."""
  inputs: jax.Array     # what the encoder sees (PCA-projected or raw)
  originals: jax.Array  # the data itself: decoder targets, input distances
  # [bank_size, *input shape]: Gaussian noise vectors, already scaled, that
  # steps add to what the encoder sees (UMAPLossSettings.input_noise; see
  # sampling.noise_from_bits). Data, not a static setting: the programs
  # compile before the kNN graph that sets its scale exists.
  noise_bank: jax.Array | None = None


class PhaseInputs(NamedTuple):
  """What every step of a phase reads (on the device, never donated)."""
  data: TrainingData
  table: EdgeTable
  targets: jax.Array  # [N, n_components]: where "init" regresses to
  key: jax.Array      # the fit's training key (folded with the step)


class UMAPLossSettings(NamedTuple):
  """Static settings of the UMAP phase's loss."""
  a: float
  b: float
  negative_sample_rate: int = 5
  repulsion_strength: float = 1.0
  reconstruction_weight: float = 0.0   # 0: no decoder term
  reconstruction_likelihood: str = "gaussian"
  autoencoder_loss: bool = False       # decoder gradient reaches the encoder
  global_correlation_loss_weight: float = 0.0
  full_batch: bool = False             # embed every point once per step
  negative_draws: int = 5              # uniform draws averaged per head
  final_augmentation: float = 1.0      # augmentation's scale at the end
  total_steps: int = 1                 # the schedule's length
  neighbor_mixing: float = 0.0         # max fraction towards a kNN (0: off)
  input_noise: bool = False            # add data.noise_bank rows to inputs


def squared_distances(x: jax.Array, y: jax.Array) -> jax.Array:
  return jnp.sum(jnp.square(x - y), axis=-1)


def global_correlation_loss(inputs: jax.Array, embedding: jax.Array,
                            key: jax.Array) -> jax.Array:
  """-Pearson correlation of paired distances in input and embedding space.

  As in umap-learn's ParametricUMAP: inputs and embedding are standardised,
  each point is paired with a random other point of the batch, and the
  distances along the pairs should correlate, which preserves global
  structure the local cross-entropy ignores.
  """
  flat = inputs.reshape(inputs.shape[0], -1)
  standardise = lambda v: (v - v.mean()) / (v.std() + 1e-8)
  flat, embedding = standardise(flat), standardise(embedding)
  partner = jax.random.permutation(key, flat.shape[0])
  dx = jnp.sqrt(squared_distances(flat, flat[partner]) + 1e-8)
  dz = jnp.sqrt(squared_distances(embedding, embedding[partner]) + 1e-8)
  dx, dz = standardise(dx), standardise(dz)
  return -jnp.mean(dx * dz)


def shifted_negatives(points: jax.Array, bits: jax.Array) -> jax.Array:
  """[M, N, d]: row m is `points` [N, d] cyclically shifted by a uniform
  s_m in [1, N - 1] (bits: uint32 [M]), so point i meets point i + s_m.

  Each of a point's M negatives is uniform over the other points, as an
  independent draw would be; contiguous slices instead of N * M gathered
  rows make the pass and its gradient a few memory copies rather than a
  scatter of every pair.
  """
  num_points = points.shape[0]
  shifts = 1 + index_from_bits(bits, num_points - 1)
  doubled = jnp.concatenate([points, points])
  return jax.vmap(lambda shift: jax.lax.dynamic_slice_in_dim(
      doubled, shift, num_points, axis=0))(shifts)


def in_batch_negatives(z_ends: jax.Array, ends: jax.Array,
                       head_share: jax.Array, bits: jax.Array
                       ) -> tuple[jax.Array, jax.Array]:
  """(negatives [B, M, d], their importance weights [B, M]) for B edges.

  Edge b's M negatives are drawn among the 2 (B - 1) ends of the step's
  other edges (z_ends [2B, d]: heads then tails; their point indices ends
  [2B]; bits uint32 [B, M]), so no pool is embedded for them. The other
  edges are drawn independently of edge b, each end being point j with
  probability head_share[j] (edges are drawn by weight, and a symmetric
  graph's tails are distributed as its heads); weighting it by
  1 / (N head_share[j]) makes the repulsion's expectation UMAP's: a mean
  over all N points.
  """
  num_edges = z_ends.shape[0] // 2
  pick = index_from_bits(bits, 2 * (num_edges - 1))
  edge = (jnp.arange(num_edges)[:, None] + 1 + pick // 2) % num_edges
  slot = edge + num_edges * (pick % 2)
  share = jnp.take(head_share, jnp.take(ends, slot))
  weight = 1.0 / (head_share.shape[0] * jnp.maximum(share, 1e-12))
  return z_ends[slot], jax.lax.stop_gradient(weight)


def phase_terms(settings: UMAPLossSettings) -> dict[str, tuple[str, ...]]:
  """{phase: the loss terms its steps report}, in the order they are added.

  The updates watch each of them (and the total and the gradient norm) for
  NaN/Inf, so a stopped fit names the term that went non-finite.
  """
  umap = ("umap",
          *(("reconstruction",) if settings.reconstruction_weight > 0 else ()),
          *(("correlation",) if settings.global_correlation_loss_weight > 0
            else ()))
  return {"init": ("init",), "umap": umap}


def make_phase_losses(graphdef: nnx.GraphDef, settings: UMAPLossSettings,
                      batch_size: int, init_batch_size: int
                      ) -> dict[str, Callable]:
  """{phase: loss_fn(params, data, edges, targets, key) -> (loss, terms)}.

  Both phases show the encoder augmented inputs: moved along a kNN segment
  (neighbor_mixing) and then perturbed by Gaussian noise (input_noise), so
  that it learns a smooth map around the training points, where new points
  fall, rather than one fitted to the points alone.
  """

  def add_noise(points, bits, data, scale=1.0):
    if not settings.input_noise:
      return points
    return points + scale * noise_from_bits(data.noise_bank, bits)

  def augmentation_scale(step):
    """1 at step 0, falling linearly to final_augmentation at the end."""
    done = jnp.clip(step / max(settings.total_steps, 1), 0.0, 1.0)
    return 1.0 - (1.0 - settings.final_augmentation) * done

  def umap_loss(params, data: TrainingData, table: EdgeTable, targets, key,
                step):
    del targets
    model = nnx.merge(graphdef, params)
    num_points = data.inputs.shape[0]
    scale = augmentation_scale(step)
    # Points embedded this step: all of them, or the heads and tails.
    num_embedded = num_points if settings.full_batch else 2 * batch_size
    # Full batch scores every edge; sampled edges then only serve the
    # reconstruction and correlation terms.
    auxiliary = (settings.reconstruction_weight > 0
                 or settings.global_correlation_loss_weight > 0)
    bits = draw_bits(key, {
        "edges": (2, batch_size if auxiliary or not settings.full_batch
                  else 0),
        "negatives": ((settings.negative_draws,) if settings.full_batch
                      else (batch_size, settings.negative_draws)),
        "mixing": (2, num_embedded if settings.neighbor_mixing > 0 else 0),
        "noise": (num_embedded if settings.input_noise else 0,)})
    heads, tails = edges_from_bits(table, bits["edges"])

    def inputs(indices):
      if settings.neighbor_mixing > 0:
        points = mix(data.inputs, indices, *mixing_from_bits(
            indices, table.neighbors, bits["mixing"],
            settings.neighbor_mixing * scale))
      else:
        points = jnp.take(data.inputs, indices, axis=0)
      return add_noise(points, bits["noise"], data, scale)

    if settings.full_batch:
      # Small data: one pass over all points serves any number of edges.
      everything = model.embed(inputs(jnp.arange(num_points)))
      z_head, z_tail = everything[heads], everything[tails]
      z_negative = shifted_negatives(everything, bits["negatives"])
    else:
      ends = jnp.concatenate([heads, tails])
      z_ends = model.embed(inputs(ends))
      z_head, z_tail = jnp.split(z_ends, 2)
      z_negative, negative_weight = in_batch_negatives(
          z_ends, ends, table.head_share, bits["negatives"])
    head_points = jnp.take(data.originals, heads, axis=0)
    if settings.full_batch:
      umap_term = losses.umap_weighted_cross_entropy(
          squared_distances(everything[table.pair_head],
                            everything[table.pair_tail]),
          table.pair_share, squared_distances(everything[None],
                                              z_negative).T,
          table.head_share, settings.a, settings.b,
          settings.negative_sample_rate, settings.repulsion_strength)
    else:
      # Each edge's negative_sample_rate negatives, as the mean of its
      # negative_draws draws.
      umap_term = jnp.mean(losses.umap_cross_entropy(
          squared_distances(z_head, z_tail),
          squared_distances(z_head[:, None, :], z_negative), settings.a,
          settings.b, settings.repulsion_strength * (
              settings.negative_sample_rate / settings.negative_draws),
          negative_weight=negative_weight))
    terms = {"umap": umap_term}
    loss = terms["umap"]
    if settings.reconstruction_weight > 0:
      codes = z_head if settings.autoencoder_loss else jax.lax.stop_gradient(
          z_head)
      outputs = model.decode(codes)
      # Per value, not summed over the image: comparable in size to the
      # per-edge cross-entropy whatever the input dimension.
      num_values = head_points[0].size
      terms["reconstruction"] = jnp.mean(losses.reconstruction_nll(
          settings.reconstruction_likelihood, outputs, head_points)) / (
              num_values)
      loss = loss + settings.reconstruction_weight * terms["reconstruction"]
    if settings.global_correlation_loss_weight > 0:
      terms["correlation"] = global_correlation_loss(
          head_points, z_head, jax.random.fold_in(key, 1))
      loss = loss + (settings.global_correlation_loss_weight
                     * terms["correlation"])
    return loss, terms

  def init_loss(params, data, table, targets, key, step):
    del step
    model = nnx.merge(graphdef, params)
    num_points = data.inputs.shape[0]
    bits = draw_bits(key, {
        "index": (init_batch_size,),
        "mixing": (2, init_batch_size if settings.neighbor_mixing > 0 else 0),
        "noise": (init_batch_size if settings.input_noise else 0,)})
    index = index_from_bits(bits["index"], num_points)
    if settings.neighbor_mixing > 0:
      # Mixed inputs regress onto equally mixed targets.
      mixing = mixing_from_bits(index, table.neighbors, bits["mixing"],
                                settings.neighbor_mixing)
      points = mix(data.inputs, index, *mixing)
      wanted = mix(targets, index, *mixing)
    else:
      points = jnp.take(data.inputs, index, axis=0)
      wanted = jnp.take(targets, index, axis=0)
    points = add_noise(points, bits["noise"], data)  # targets stay put
    loss = jnp.mean(squared_distances(model.embed(points), wanted))
    return loss, {"init": loss}

  return {"umap": umap_loss, "init": init_loss}


def make_phase_updates(graphdef: nnx.GraphDef,
                       optimizer: optax.GradientTransformation,
                       settings: UMAPLossSettings, *, batch_size: int,
                       init_batch_size: int) -> dict[str, Update]:
  """{phase: the engine's `Update` of that phase} (train/chunk.py).

  Each step reads `PhaseInputs`; "init" regresses onto `targets`
  [N, n_components], "umap" ignores them. Metrics: the phase's loss terms
  (`phase_terms`), `loss` and `grad_norm`, all watched for NaN/Inf.
  """
  phase_losses = make_phase_losses(graphdef, settings, batch_size,
                                   init_batch_size)
  terms = phase_terms(settings)

  def make_step(loss_fn):
    def step(state: TrainState, aux, inputs: PhaseInputs):
      (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(
          state.params, inputs.data, inputs.table, inputs.targets,
          jax.random.fold_in(inputs.key, state.step), state.step)
      updates, opt_state = optimizer.update(grads, state.opt_state,
                                            state.params)
      params = optax.apply_updates(state.params, updates)
      metrics = dict(terms, loss=loss, grad_norm=optax.tree.norm(grads))
      return TrainState(params, opt_state, state.step + 1), aux, metrics
    return step

  return {phase: Update(step=make_step(phase_losses[phase]),
                        watch=(*terms[phase], "loss", "grad_norm"))
          for phase in PHASES}
