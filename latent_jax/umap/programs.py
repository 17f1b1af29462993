"""The training phases' programs, built once per setting.

A fit's programs depend only on the network's structure, the optimiser's
settings, the loss settings and the batch sizes, not on the data's values:
`phase_programs` caches them on exactly that key, and the jitted chunks
keep their compiled programs per input shape, so a refit with the same
settings and data shapes (a cross-validation fold, a pipeline refit)
compiles nothing.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import optax
from flax import nnx

from latent_jax.train.chunk import Chunk, make_chunk
from latent_jax.umap import plan as plan_lib
from latent_jax.umap.compile_options import compiler_options
from latent_jax.umap.phases import UMAPLossSettings, make_phase_updates


class OptimizerSettings(NamedTuple):
  """What `plan.make_optimizer` reads: the cache key of an optimiser."""
  learning_rate: float
  total_steps: int
  weight_decay: float
  grad_clip_norm: float


class PhasePrograms(NamedTuple):
  """The optimiser and one chunk runner per phase (train/chunk.py)."""
  optimizer: optax.GradientTransformation
  chunks: dict[str, Chunk]


@functools.lru_cache(maxsize=16)
def phase_programs(graphdef: nnx.GraphDef, optimizer: OptimizerSettings,
                   settings: UMAPLossSettings, batch_size: int,
                   init_batch_size: int, mode: str) -> PhasePrograms:
  """The phases' programs for these settings, built once: jitted chunks
  keep their compiled programs, so a fit with the same settings and data
  shapes compiles nothing."""
  transform = plan_lib.make_optimizer(
      {"weight_decay": optimizer.weight_decay,
       "grad_clip_norm": optimizer.grad_clip_norm},
      optimizer.learning_rate, optimizer.total_steps)
  updates = make_phase_updates(graphdef, transform, settings,
                               batch_size=batch_size,
                               init_batch_size=init_batch_size)
  options = compiler_options()
  return PhasePrograms(transform, {
      phase: make_chunk(update, mode, options)
      for phase, update in updates.items()})
