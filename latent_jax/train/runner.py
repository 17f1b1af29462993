"""`train`: the one training loop, for any model's chunks.

It owns when things happen; the run that calls it owns what they do:

- chunk boundaries: a chunk never crosses a phase end, a log / evaluate /
  checkpoint boundary or `steps_per_call` steps;
- cadence: `is_time(step, every, total)` (a task is due every `every` steps
  and at the end), the one rule for logging, evaluation and checkpoints;
- compilation first: every chunk program still to run is compiled before
  the first step, logged as "compiling ..." with its time, so the first
  steps/s and ETA measure training only;
- the NaN stop: a non-finite watched metric stops training naming the step,
  the metric and the member; the last checkpoint, saved before that step,
  is kept, since checkpoints are only written after finite chunks;
- only finite state is saved: before every save the parameters and the
  optimiser state are checked finite on the device (one fused reduction;
  one boolean per part reaches the host), else training stops as the NaN
  stop does, keeping the last good checkpoint;
- SIGTERM (from the start of compilation on): the current chunk stops
  within a few steps (dispatch mode) or at its end (device loop; and with
  several processes, which agree on the stop there with one collective per
  chunk, so a signal to any one of them stops all at the same step), a
  checkpoint is written, and `Preempted` is raised on every process (entry
  points exit 143, as schedulers expect of a preempted job).

Metrics reach the host once per chunk (gathered across processes), so the
loop works unchanged when a run spans several hosts.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from latent_jax.train import distributed
from latent_jax.train.checkpointing import Checkpointer
from latent_jax.train.chunk import Chunk, TrainState


class Preempted(Exception):
  """Raised after SIGTERM once the state has been checkpointed."""


class NonFiniteLossError(FloatingPointError):
  """A watched loss term, the gradient, the parameters or the optimiser
  state became NaN/Inf."""


def _all_finite(tree: Any) -> jax.Array:
  # One reduction over every float leaf, concatenated: it compiles several
  # times faster than one reduction per leaf, at the same run time.
  leaves = [leaf.ravel() for leaf in jax.tree.leaves(tree)
            if jnp.issubdtype(leaf.dtype, jnp.inexact)]
  return (jnp.all(jnp.isfinite(jnp.concatenate(leaves))) if leaves
          else jnp.bool_(True))


@jax.jit
def finite_parts(state: TrainState) -> jax.Array:
  """[2] bool on the device: (params finite, optimiser state finite)."""
  return jnp.stack([_all_finite(state.params), _all_finite(state.opt_state)])


def _precompile(state: TrainState, phases: Sequence["Phase"],
                check_state: bool) -> None:
  """Compiles the chunks of `phases` (and the finite check), logging the
  time, so the first chunk's rate (and the ETA) leaves compilation out."""
  started = time.perf_counter()
  logging.info("compiling %s ...", ", ".join(p.name for p in phases))
  done = []
  for phase in phases:
    if not any(phase.chunk is chunk for chunk in done):
      phase.chunk.precompile(state, phase.inputs)
      done.append(phase.chunk)
  if check_state:
    finite_parts.lower(state).compile()
  logging.info("compiling done in %.1f s.", time.perf_counter() - started)


def is_time(step: int, every: int, total: int) -> bool:
  """Whether a task done every `every` steps is due after `step`.

  Due at multiples of `every` and at the last step; `every` <= 0: only at
  the last step.
  """
  return step == total or (every > 0 and step % every == 0)


def next_boundary(step: int, everies: Sequence[int], end: int) -> int:
  """The first step after `step` at which any task is due (at most `end`)."""
  return min([end] + [(step // every + 1) * every for every in everies
                      if every > 0])


class Phase(NamedTuple):
  """A stretch of steps run by one chunk (e.g. UMAP's init, then umap)."""
  name: str
  end: int      # global step at which the phase ends
  chunk: Chunk
  inputs: Any   # what its steps read (device arrays)


class Cadence(NamedTuple):
  """Every how many steps each task runs (0: only at the end)."""
  steps_per_call: int
  log_every: int
  eval_every: int = 0
  checkpoint_every: int = 0


class Hooks(NamedTuple):
  """What a run does at the runner's moments (each optional).

  log(step, phase, means, steps_per_sec): means since the last log,
    weighted by steps ([M] or scalar host arrays).
  evaluate(step, state): the periodic test-set evaluation.
  after_chunk(step, phase, means, steps_taken, seconds): every chunk.
  describe_member(index) -> str: names member `index` in errors.
  checkpoint_meta(step) -> dict: the JSON saved beside each checkpoint.
  """
  log: Callable[[int, str, dict, float], None] | None = None
  evaluate: Callable[[int, TrainState], None] | None = None
  after_chunk: Callable[[int, str, dict, int, float], None] | None = None
  describe_member: Callable[[int], str] | None = None
  checkpoint_meta: Callable[[int], dict] | None = None


@contextlib.contextmanager
def sigterm_flag() -> Iterator[threading.Event]:
  """Yields an Event set on SIGTERM (main thread only; else never set)."""
  event = threading.Event()
  if threading.current_thread() is not threading.main_thread():
    yield event
    return
  previous = signal.signal(signal.SIGTERM, lambda *_: event.set())
  try:
    yield event
  finally:
    signal.signal(signal.SIGTERM, previous)


def _first_nonfinite(first_bad: np.ndarray) -> tuple[int, int] | None:
  """(member index, step) of the earliest non-finite step, or None."""
  first_bad = np.atleast_1d(first_bad)
  bad = np.flatnonzero(first_bad >= 0)
  if not len(bad):
    return None
  member = int(bad[np.argmin(first_bad[bad])])
  return member, int(first_bad[member])


def train(state: TrainState, phases: Sequence[Phase], cadence: Cadence, *,
          hooks: Hooks = Hooks(), checkpointer: Checkpointer | None = None,
          stop_on_sigterm: bool = True, advice: str = "") -> TrainState:
  """Trains from `state.step` to the end of the last phase.

  Args:
    state: where to start (a fresh or restored state; donated).
    phases: in order; each ends where the next begins.
    cadence: chunk length and the log / evaluate / checkpoint intervals.
    hooks: what the run does at those moments.
    checkpointer: saves at the checkpoint cadence, at the end and on
      SIGTERM; None: no checkpoints (e.g. a plain estimator fit).
    stop_on_sigterm: catch SIGTERM (checkpoint, then raise `Preempted`).
    advice: what to change, appended to the non-finite error.

  Returns the final state. Raises `NonFiniteLossError` or `Preempted`.
  """
  total = phases[-1].end
  step = int(state.step)
  everies = (cadence.log_every, cadence.eval_every, cadence.checkpoint_every)
  pending: dict[str, np.ndarray] = {}
  pending_steps, pending_seconds = 0, 0.0

  def save(at_step: int) -> None:
    if checkpointer is None:
      return
    finite = np.asarray(distributed.fetch(finite_parts(state)))
    if not finite.all():
      parts = [name for name, ok in zip(("parameters", "optimiser state"),
                                        finite) if not ok]
      checkpointer.wait()
      raise NonFiniteLossError(
          f"Non-finite {' and '.join(parts)} after step {at_step}; training "
          f"stopped. The last good checkpoint (step "
          f"{checkpointer.latest_step()}) is kept in "
          f"{checkpointer.directory}. {advice}".strip())
    meta = hooks.checkpoint_meta(at_step) if hooks.checkpoint_meta else {}
    checkpointer.save(at_step, state, {"step": at_step, **meta})

  signals = sigterm_flag() if stop_on_sigterm else contextlib.nullcontext()
  with signals as sigterm:
    # Inside: a SIGTERM while compiling (minutes on large programs) stops
    # at the first chunk's end like any other, on every process.
    if step < total:
      _precompile(state, [p for p in phases if step < p.end],
                  checkpointer is not None)
    should_stop = sigterm.is_set if sigterm is not None else None
    # Several processes agree on a stop at chunk ends (one collective), so
    # every process checkpoints the same step.
    several = jax.process_count() > 1
    chunk_stop = None if several else should_stop
    while step < total:
      phase = next(p for p in phases if step < p.end)
      end = min(phase.end, step + cadence.steps_per_call,
                next_boundary(step, everies, total))
      started = time.perf_counter()
      result = phase.chunk(state, phase.inputs, end - step, chunk_stop)
      state = result.state
      host = distributed.fetch(result._replace(state=None))
      seconds = time.perf_counter() - started
      bad = _first_nonfinite(host.first_nonfinite_step)
      if bad is not None:
        _raise_nonfinite(bad, host, phase, phases, hooks, checkpointer,
                         advice)
      taken = int(host.num_steps)
      step += taken
      for name, mean in host.means.items():
        pending[name] = pending.get(name, 0.0) + (
            np.asarray(mean, np.float64) * taken)
      pending_steps += taken
      pending_seconds += seconds
      if taken and hooks.after_chunk is not None:
        hooks.after_chunk(step, phase.name, host.means, taken, seconds)
      if pending_steps and (is_time(step, cadence.log_every, total)
                            or step == phase.end):
        if hooks.log is not None:
          hooks.log(step, phase.name,
                    {k: v / pending_steps for k, v in pending.items()},
                    pending_steps / max(pending_seconds, 1e-9))
        pending, pending_steps, pending_seconds = {}, 0, 0.0
      if (taken and hooks.evaluate is not None
          and is_time(step, cadence.eval_every, total)):
        hooks.evaluate(step, state)
      if is_time(step, cadence.checkpoint_every, total):
        save(step)
      if should_stop is not None and (
          distributed.any_process(should_stop()) if several
          else should_stop()):
        save(step)
        if checkpointer is not None:
          checkpointer.wait()
        raise Preempted(f"Stopped by SIGTERM at step {step} (checkpointed); "
                        "rerun the same command to resume.")
  return state


def _raise_nonfinite(bad: tuple[int, int], host, phase: Phase,
                     phases: Sequence[Phase], hooks: Hooks,
                     checkpointer: Checkpointer | None, advice: str) -> None:
  member, bad_step = bad
  watch = phase.chunk.update.watch
  bits = int(np.atleast_1d(host.nonfinite_bits)[member])
  terms = ", ".join(name for i, name in enumerate(watch) if bits & (1 << i))
  where = ""
  if np.ndim(host.first_nonfinite_step) and hooks.describe_member:
    where = hooks.describe_member(member)
  during = f" ({phase.name} phase)" if len(phases) > 1 else ""
  message = (f"Non-finite {terms}{where} at step {bad_step}{during}; "
             "training stopped.")
  if checkpointer is not None:
    checkpointer.wait()
    message += (f" The last good checkpoint (step "
                f"{checkpointer.latest_step()}) is kept in "
                f"{checkpointer.directory}.")
  raise NonFiniteLossError(f"{message} {advice}".strip())
