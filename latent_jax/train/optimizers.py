"""Optax optimiser and learning-rate schedule from the `train` config."""

from __future__ import annotations

from typing import NamedTuple

import optax

SCHEDULES = ("constant", "exponential", "cosine")
OPTIMIZERS = ("adam", "adamw")


def make_schedule(train_config, total_steps: int) -> optax.Schedule:
  """Learning rate per step, with optional linear warm-up.

  "exponential" is Keras' ExponentialDecay without staircase (the Keras
  VAE-vs-AE heatmap notebook's: 1e-3 * 0.99 ** (step / 30)); "cosine"
  decays to 0 at `total_steps`.
  """
  peak = train_config.learning_rate
  warmup = train_config.warmup_steps
  name = train_config.lr_schedule
  if name == "constant":
    main = optax.constant_schedule(peak)
  elif name == "exponential":
    main = optax.exponential_decay(peak, train_config.lr_decay_steps,
                                   train_config.lr_decay_rate)
  elif name == "cosine":
    main = optax.cosine_decay_schedule(peak, max(total_steps - warmup, 1))
  else:
    raise ValueError(f"Unknown train.lr_schedule {name!r}; expected one of "
                     f"{SCHEDULES}.")
  if warmup <= 0:
    return main
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak, warmup), main], [warmup])


class Optimization(NamedTuple):
  """The optimiser and its learning-rate schedule (for logging)."""
  optimizer: optax.GradientTransformation
  schedule: optax.Schedule


def make_optimizer(train_config, total_steps: int) -> Optimization:
  """Optional global-norm clipping, then Adam(W) on the schedule."""
  schedule = make_schedule(train_config, total_steps)
  if train_config.optimizer == "adam":
    optimizer = optax.adam(schedule)
  elif train_config.optimizer == "adamw":
    optimizer = optax.adamw(schedule, weight_decay=train_config.weight_decay)
  else:
    raise ValueError(f"Unknown train.optimizer {train_config.optimizer!r}; "
                     f"expected one of {OPTIMIZERS}.")
  if train_config.grad_clip_norm > 0:
    optimizer = optax.chain(
        optax.clip_by_global_norm(train_config.grad_clip_norm), optimizer)
  return Optimization(optimizer, schedule)
