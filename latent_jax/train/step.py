"""The jitted training program: many optimiser steps per host call.

Everything crossing the jit boundary is a plain pytree: the NNX model is split
once into `graphdef` (static) and `params` (arrays). The training images live
on the device; each step draws its batch from a per-epoch permutation inside
the program, so no data is copied from the host per step. A chunk of
`num_steps` steps is one host call with metrics reduced on device, in one of
two modes that run the same step:

- "device_loop": one jitted `lax.fori_loop` whose trip count is a traced
  scalar (any chunk length reuses one compiled program). The mode for GPUs
  and TPUs, where per-step dispatch would leave the accelerator idle.
- "dispatch": one jitted, donated step per dispatch, queued asynchronously,
  with a single host sync per chunk. The mode for XLA:CPU, which runs the
  weight-gradient convolutions of a loop body about 20x slower than the same
  convolutions outside a loop (measured: a 3x3 conv's weight gradient at
  batch 64 takes 0.022 s per step dispatched and 0.56 s per step in
  `lax.scan`/`fori_loop` with any unroll factor short of full unrolling),
  while its dispatch overhead is microseconds per step.

Every run trains an ensemble (latent_jax/train/ensemble.py): parameters and
optimiser state carry a leading member axis, the per-member update is mapped
over it with `vmap_members`, and all members share each step's batch. The
KL weights and posterior keys are [M] arrays. `train_chunk` also accepts one
unstacked model (a scalar KL weight): it is run as an ensemble of one.

Randomness depends only on (key, step): the batch of step s comes from the
permutation of epoch s // steps_per_epoch, and its posterior noise from
`fold_in(model_key, s)`. A run resumed from a checkpoint at step s therefore
replays exactly the steps an uninterrupted run would.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from latent_jax import losses
from latent_jax.train.ensemble import resolve_platform_mode, vmap_members

# Bit flags naming which quantity first became NaN/Inf.
NONFINITE_TERMS = ("recon", "kl", "gradient")


class TrainState(NamedTuple):
  """Training state: a plain pytree, donated to each call."""
  params: Any      # nnx.State of the model's parameters ([M, ...] leaves)
  opt_state: Any   # optax state ([M, ...] leaves)
  step: jax.Array  # int32 scalar: optimiser steps taken (shared by members)


def init_train_state(params: Any, optimizer: optax.GradientTransformation
                     ) -> TrainState:
  return TrainState(params, optimizer.init(params),
                    jnp.zeros((), jnp.int32))


def nonfinite_terms(bits: int) -> list[str]:
  """Names of the terms encoded in a non-finite bit mask."""
  return [name for i, name in enumerate(NONFINITE_TERMS) if bits & (1 << i)]


CHUNK_MODES = ("auto", "device_loop", "dispatch")
SYNC_EVERY = 10  # dispatch mode with a stop callback: max steps queued ahead


def resolve_chunk_mode(mode: str, platform: str | None = None) -> str:
  """"auto" -> "dispatch" on CPU, "device_loop" on GPU/TPU (see module doc)."""
  return resolve_platform_mode("train.chunk_mode", mode, CHUNK_MODES,
                               "dispatch", "device_loop", platform)


def init_ensemble_state(member_params: Any, optimizer:
                        optax.GradientTransformation) -> TrainState:
  """TrainState of stacked member parameters ([M, ...] leaves)."""
  return TrainState(member_params, jax.vmap(optimizer.init)(member_params),
                    jnp.zeros((), jnp.int32))


def make_train_chunk(graphdef: nnx.GraphDef, optimizer:
                     optax.GradientTransformation, *, likelihood: str,
                     gaussian_scale: float, kl_warmup_steps: int,
                     batch_size: int, num_train: int,
                     chunk_mode: str = "auto", conv_batching: str = "auto",
                     batch_sharding: Any = None) -> Callable:
  """Builds `train_chunk(state, images, data_key, model_key, kl_weight, n)`.

  Args of the builder, besides the loss and data settings:
    chunk_mode: see the module doc.
    conv_batching: how convolutions map over members (ensemble.py).
    batch_sharding: optional `jax.sharding.Sharding` for each step's
      [batch_size, H, W, C] batch (data parallelism over a device mesh).

  Args of the returned function (it donates `state`):
    state: TrainState with a leading member axis, or of one unstacked model.
    images: [N, H, W, C] training images, already on the device.
    data_key: key for the per-epoch permutations (shared by ensemble members).
    model_key: [M] keys for posterior samples (or one key, unstacked).
    kl_weight: [M] float array (or a scalar, unstacked); traced, so any KL
      weights reuse one compiled program.
    num_steps: Python int, steps to run in this call.
    should_stop: optional callable; in "dispatch" mode the chunk ends early
      once it returns True (checked between steps, with the host kept at
      most `SYNC_EVERY` steps ahead), so SIGTERM is honoured within seconds
      even when a chunk is long.

  Returns (state, metrics) as device arrays: metrics are [M] means over the
  chunk of `loss`, `recon`, `kl`, `neg_elbo` (recon + kl, unweighted) and
  `grad_norm`, [M] `first_nonfinite_step` (-1 if none) and `nonfinite_bits`
  (see `NONFINITE_TERMS`), and the scalar `num_steps` (steps actually
  taken). For an unstacked state the [M] metrics are scalars.
  """
  steps_per_epoch = num_train // batch_size
  if steps_per_epoch < 1:
    raise ValueError(f"train.batch_size={batch_size} is larger than the "
                     f"training set ({num_train} images): lower it.")
  chunk_mode = resolve_chunk_mode(chunk_mode)

  def loss_fn(params, images, key, kl_weight):
    model = nnx.merge(graphdef, params)
    terms = model.loss_terms(images, key, likelihood, gaussian_scale)
    loss = jnp.mean(losses.negative_elbo(terms["recon"], terms["kl"],
                                         kl_weight))
    return loss, {"recon": jnp.mean(terms["recon"]),
                  "kl": jnp.mean(terms["kl"])}

  def epoch_permutation(data_key, epoch):
    return jax.random.permutation(jax.random.fold_in(data_key, epoch),
                                  num_train)

  def member_update(params, opt_state, step, batch, model_key, kl_weight):
    """One member's optimiser step on the shared batch."""
    weight = kl_weight * losses.kl_warmup_factor(step, kl_warmup_steps)
    (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, batch, jax.random.fold_in(model_key, step), weight)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, {"loss": loss, "recon": terms["recon"],
                               "kl": terms["kl"],
                               "grad_norm": optax.tree.norm(grads)}

  update_members = vmap_members(member_update, (0, 0, None, None, 0, 0),
                                conv_batching)

  def start_chunk(state, data_key):
    """Carry: (state, permutation, metric sums, first bad step, bad bits)."""
    members = jax.tree.leaves(state.params)[0].shape[0]
    zero = jnp.zeros((members,), jnp.float32)
    sums = {"loss": zero, "recon": zero, "kl": zero, "grad_norm": zero}
    permutation = epoch_permutation(data_key, state.step // steps_per_epoch)
    return (state, permutation, sums, jnp.full((members,), -1, jnp.int32),
            jnp.zeros((members,), jnp.int32))

  def one_step(carry, images, data_key, model_keys, kl_weights):
    state, permutation, sums, first_bad, bad_bits = carry
    step = state.step
    epoch, position = jnp.divmod(step, steps_per_epoch)
    permutation = jax.lax.cond(
        position == 0, lambda: epoch_permutation(data_key, epoch),
        lambda: permutation)
    batch_indices = jax.lax.dynamic_slice_in_dim(
        permutation, position * batch_size, batch_size)
    batch = jnp.take(images, batch_indices, axis=0)
    if batch_sharding is not None:
      batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
    params, opt_state, terms = update_members(
        state.params, state.opt_state, step, batch, model_keys, kl_weights)

    bits = (jnp.where(jnp.isfinite(terms["recon"]), 0, 1)
            | jnp.where(jnp.isfinite(terms["kl"]), 0, 2)
            | jnp.where(jnp.isfinite(terms["grad_norm"]), 0, 4))
    is_first = (first_bad < 0) & (bits > 0)
    first_bad = jnp.where(is_first, step, first_bad)
    bad_bits = jnp.where(is_first, bits, bad_bits)
    sums = jax.tree.map(jnp.add, sums, terms)
    return (TrainState(params, opt_state, step + 1), permutation, sums,
            first_bad, bad_bits)

  def finish_chunk(carry, num_steps):
    state, _, sums, first_bad, bad_bits = carry
    count = jnp.maximum(num_steps, 1).astype(jnp.float32)
    metrics = {name: total / count for name, total in sums.items()}
    metrics["neg_elbo"] = metrics["recon"] + metrics["kl"]
    metrics["num_steps"] = num_steps
    metrics["first_nonfinite_step"] = first_bad
    metrics["nonfinite_bits"] = bad_bits
    return state, metrics

  if chunk_mode == "device_loop":
    def device_loop(state, images, data_key, model_key, kl_weight,
                    num_steps):
      carry = jax.lax.fori_loop(
          0, num_steps,
          lambda _, carry: one_step(carry, images, data_key, model_key,
                                    kl_weight),
          start_chunk(state, data_key))
      return finish_chunk(carry, num_steps)

    device_loop = jax.jit(device_loop, donate_argnums=0)

    def run_chunk(state, images, data_key, model_key, kl_weight,
                  num_steps, should_stop=None):
      del should_stop  # one program: it cannot stop part-way
      return device_loop(state, images, data_key, model_key, kl_weight,
                         jnp.int32(num_steps))
    return _accept_unstacked(run_chunk)

  start_jit = jax.jit(start_chunk, donate_argnums=0)
  step_jit = jax.jit(one_step, donate_argnums=0)
  finish_jit = jax.jit(finish_chunk, donate_argnums=0)

  def run_chunk(state, images, data_key, model_key, kl_weight, num_steps,
                should_stop=None):
    # Dispatches are asynchronous: the host queues steps ahead of the device.
    # With a stop callback it waits every SYNC_EVERY steps (a bubble of
    # microseconds) so that it is never far ahead of a stop request.
    carry = start_jit(state, data_key)
    taken = 0
    while taken < num_steps:
      if should_stop is not None:
        if taken % SYNC_EVERY == 0:
          jax.block_until_ready(carry[0].step)
        if should_stop():
          break
      carry = step_jit(carry, images, data_key, model_key, kl_weight)
      taken += 1
    return finish_jit(carry, jnp.int32(taken))
  return _accept_unstacked(run_chunk)


def _accept_unstacked(run_chunk: Callable) -> Callable:
  """Lets `run_chunk` take one unstacked model: an ensemble of one."""

  def train_chunk(state, images, data_key, model_key, kl_weight, num_steps,
                  should_stop=None):
    if jnp.ndim(kl_weight) > 0:
      return run_chunk(state, images, data_key, model_key, kl_weight,
                       num_steps, should_stop)
    add_axis = lambda tree: jax.tree.map(lambda x: x[None], tree)
    drop_axis = lambda tree: jax.tree.map(lambda x: x[0], tree)
    state = TrainState(add_axis(state.params), add_axis(state.opt_state),
                       state.step)
    state, metrics = run_chunk(state, images, data_key, model_key[None],
                               jnp.reshape(kl_weight, (1,)), num_steps,
                               should_stop)
    state = TrainState(drop_axis(state.params), drop_axis(state.opt_state),
                       state.step)
    return state, {name: value if name == "num_steps" else value[0]
                   for name, value in metrics.items()}
  return train_chunk
