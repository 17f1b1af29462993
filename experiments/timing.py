"""Timing helpers shared by the benchmarks (not tests)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp


def timed(fn, repeats: int) -> float:
  """Seconds per call of `fn` after one warm-up call (compilation)."""
  jax.block_until_ready(fn())
  started = time.perf_counter()
  for _ in range(repeats):
    out = fn()
  jax.block_until_ready(out)
  return (time.perf_counter() - started) / repeats


def matmul_flops_per_sec(size: int = 2048, repeats: int = 10) -> float:
  """This device's float32 jitted matmul rate (FLOP/s): the yardstick."""
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  return 2 * size**3 / timed(lambda: matmul(a, b), repeats)
