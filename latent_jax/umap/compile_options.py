"""XLA compile options of the Parametric UMAP's training and layout programs.

On XLA:CPU, YNNPACK runs the matrix products and XLA's own loop fusions
the rest: YNNPACK's reduce fusions sum the losses' short reductions (over
the 2 embedding components, over a point's negatives) several times slower
than XLA's loops do, a few per cent of a full-batch fit (docs/benchmarks.md).
Other platforms, and an XLA that does not know the option, keep XLA's
defaults.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

# YNNPACK fuses dots only (XLA's default list also holds its reductions).
CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type":
               "LIBRARY_FUSION_TYPE_DOT"}


@functools.cache
def _accepted(options: tuple[tuple[str, str], ...]) -> bool:
  """Whether this XLA compiles a program with `options`."""
  try:
    jax.jit(jnp.sum, compiler_options=dict(options)).lower(
        jax.ShapeDtypeStruct((2, 2), jnp.float32)).compile()
  except jax.errors.JaxRuntimeError:  # an unknown option or value
    return False
  return True


def compiler_options() -> dict[str, str] | None:
  """`CPU_OPTIONS` on a CPU backend whose XLA accepts them; else None."""
  if jax.default_backend() != "cpu":
    return None
  options = tuple(sorted(CPU_OPTIONS.items()))
  return dict(options) if _accepted(options) else None
