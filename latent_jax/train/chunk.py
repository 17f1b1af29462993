"""`make_chunk`: many optimiser steps of any update per host call.

The engine knows no model. A run hands it an `Update`: a pure per-step
function `step(state, aux, inputs) -> (state, aux, metrics)` over a
`TrainState` (plain pytrees: the NNX model is split once into a static
graphdef and its parameters), plus an optional `begin(state, inputs) -> aux`
that starts a chunk's private carry (e.g. the epoch's batch permutation).
`inputs` are the device arrays every step reads (training data, keys, KL
weights); they are never donated, the state always is. The VAE/AE step
(train/step.py) and each Parametric UMAP phase (umap/phases.py) are such
updates.

A chunk of `num_steps` steps is one host call with the metrics summed on
the device, in one of two modes that take the same steps:

- "device_loop": one jitted `lax.fori_loop` whose trip count is traced, so
  any chunk length reuses one program. For GPUs and TPUs, where dispatching
  step by step would leave the accelerator idle.
- "dispatch": one jitted, donated step per dispatch, queued asynchronously,
  with a single host sync per chunk. For XLA:CPU, which runs convolution
  weight gradients inside a loop body far slower than outside one, while a
  dispatch costs microseconds. With a stop callback the host stays at most
  `SYNC_EVERY` steps ahead of the device, so SIGTERM is honoured within a
  few steps however long the chunk.

Each chunk also reports the first step at which a watched metric (e.g. a
loss term or the gradient norm) was NaN/Inf, per member, and which ones:
the runner stops there, keeping the last finite checkpoint.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from latent_jax.train.ensemble import resolve_platform_mode

CHUNK_MODES = ("auto", "device_loop", "dispatch")
SYNC_EVERY = 10  # dispatch mode with a stop callback: max steps queued ahead


class TrainState(NamedTuple):
  """Training state: a plain pytree, donated to each call."""
  params: Any      # nnx.State of the parameters ([M, ...] leaves for ensembles)
  opt_state: Any   # optax state, same leading axes as params
  step: jax.Array  # int32 scalar: optimiser steps taken (shared by members)


def init_train_state(params: Any, optimizer: optax.GradientTransformation
                     ) -> TrainState:
  """Step 0 of `params` under `optimizer`."""
  return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))


class Update(NamedTuple):
  """What a model plugs into the engine.

  step: (state, aux, inputs) -> (state, aux, metrics); metrics map names to
    [] or [M] arrays, summed over the chunk.
  begin: (state, inputs) -> aux, the chunk's private carry (none by default).
  watch: names of metrics whose NaN/Inf stops training; bit i of
    `nonfinite_bits` is `watch[i]`.
  """
  step: Callable[[TrainState, Any, Any], tuple[TrainState, Any, dict]]
  begin: Callable[[TrainState, Any], Any] | None = None
  watch: tuple[str, ...] = ("loss",)


class ChunkResult(NamedTuple):
  """One chunk's outcome (device arrays until fetched)."""
  state: TrainState
  means: dict[str, jax.Array]      # metric -> mean over the chunk, [] or [M]
  num_steps: jax.Array             # [] int32: steps taken (fewer if stopped)
  first_nonfinite_step: jax.Array  # [] or [M] int32; -1: all finite
  nonfinite_bits: jax.Array        # [] or [M] int32; bit i: watch[i]


def resolve_chunk_mode(mode: str, platform: str | None = None) -> str:
  """"auto" -> "dispatch" on CPU, "device_loop" on GPU/TPU (module doc)."""
  return resolve_platform_mode("train.chunk_mode", mode, CHUNK_MODES,
                               "dispatch", "device_loop", platform)


class Chunk:
  """`chunk(state, inputs, num_steps, should_stop=None) -> ChunkResult`.

  `state` is donated. `should_stop()` (dispatch mode) ends the chunk early,
  checked between steps. `chunk.precompile(state, inputs)` compiles the
  programs without running them (nothing donated; shapes suffice), so a
  caller can compile on another thread while the host does other work.
  """

  def __init__(self, update: Update, mode: str = "auto",
               compiler_options: dict[str, Any] | None = None):
    self.update = update
    self.mode = resolve_chunk_mode(mode)
    jit = functools.partial(jax.jit, compiler_options=compiler_options)
    self._begin_carry = jit(self._start)
    if self.mode == "device_loop":
      self._loop = jit(self._device_loop, donate_argnums=0)
    else:
      self._step = jit(self._one_step, donate_argnums=0)
      self._finish = jit(self._end, donate_argnums=0)

  # --- traced pieces ---------------------------------------------------------

  def _aux(self, state, inputs):
    return () if self.update.begin is None else self.update.begin(state,
                                                                  inputs)

  def _start(self, state, inputs):
    """Carry: (state, aux, metric sums, first bad step, bad bits)."""
    aux = self._aux(state, inputs)
    _, _, shapes = jax.eval_shape(self.update.step, state, aux, inputs)
    sums = {name: jnp.zeros(s.shape, jnp.float32)
            for name, s in shapes.items()}
    watched = jnp.broadcast_shapes(*(shapes[n].shape
                                     for n in self.update.watch))
    return (aux, sums, jnp.full(watched, -1, jnp.int32),
            jnp.zeros(watched, jnp.int32))

  def _one_step(self, carry, inputs):
    state, aux, sums, first_bad, bad_bits = carry
    step = state.step
    state, aux, metrics = self.update.step(state, aux, inputs)
    bits = sum(jnp.where(jnp.isfinite(metrics[name]), 0, 1 << i)
               for i, name in enumerate(self.update.watch))
    is_first = (first_bad < 0) & (bits > 0)
    first_bad = jnp.where(is_first, step, first_bad)
    bad_bits = jnp.where(is_first, bits, bad_bits)
    sums = {name: sums[name] + metrics[name] for name in sums}
    return state, aux, sums, first_bad, bad_bits

  @staticmethod
  def _end(carry, num_steps) -> ChunkResult:
    state, _, sums, first_bad, bad_bits = carry
    count = jnp.maximum(num_steps, 1).astype(jnp.float32)
    return ChunkResult(state, {name: total / count
                               for name, total in sums.items()},
                       num_steps, first_bad, bad_bits)

  def _device_loop(self, state, inputs, num_steps):
    carry = (state, *self._start(state, inputs))
    carry = jax.lax.fori_loop(0, num_steps,
                              lambda _, c: self._one_step(c, inputs), carry)
    return self._end(carry, num_steps)

  # --- host side -------------------------------------------------------------

  def __call__(self, state: TrainState, inputs: Any, num_steps: int,
               should_stop: Callable[[], bool] | None = None) -> ChunkResult:
    if self.mode == "device_loop":
      del should_stop  # one program: it cannot stop part-way
      return self._loop(state, inputs, jnp.int32(num_steps))
    carry = (state, *self._begin_carry(state, inputs))
    taken = 0
    while taken < num_steps:
      if should_stop is not None:
        if taken % SYNC_EVERY == 0:
          jax.block_until_ready(carry[0].step)
        if should_stop():
          break
      carry = self._step(carry, inputs)
      taken += 1
    return self._finish(carry, jnp.int32(taken))

  def precompile(self, state: Any, inputs: Any) -> None:
    """Compiles this chunk's programs for these shapes, running nothing."""
    if self.mode == "device_loop":
      self._loop.lower(state, inputs, jnp.int32(0)).compile()
      return
    start = self._begin_carry.lower(state, inputs).compile()
    # The carry as the real call makes it: its shapes with the shardings
    # `_begin_carry` gives them (a different sharding would recompile).
    carry = (state, *jax.tree.map(
        lambda shape, sharding: jax.ShapeDtypeStruct(
            shape.shape, shape.dtype, sharding=sharding),
        jax.eval_shape(self._start, state, inputs), start.output_shardings))
    self._step.lower(carry, inputs).compile()
    self._finish.lower(carry, jnp.int32(0)).compile()


def make_chunk(update: Update, mode: str = "auto",
               compiler_options: dict[str, Any] | None = None) -> Chunk:
  """The chunk runner of `update` in `mode` ("auto": by platform), its
  programs compiled with XLA's `compiler_options` (None: the defaults)."""
  return Chunk(update, mode, compiler_options)
