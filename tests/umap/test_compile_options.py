"""The UMAP programs' XLA:CPU compile options."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latent_jax.umap import compile_options


def _squared_distance_sum(x, y):  # x, y: [M, N, 2]: the loss's reductions
  return jnp.sum(jnp.exp(-jnp.sum(jnp.square(x - y), axis=-1)))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU only")
def test_cpu_options_keep_ynnpack_dots_and_drop_its_reductions():
  options = compile_options.compiler_options()
  assert options == compile_options.CPU_OPTIONS
  x = jax.ShapeDtypeStruct((8, 500, 2), jnp.float32)
  w = jax.ShapeDtypeStruct((64, 64), jnp.float32)

  def program(x, y, w):
    return _squared_distance_sum(x, y), (x.reshape(-1, 64) @ w).sum()

  def fusions(options):
    text = jax.jit(program, compiler_options=options).lower(x, x, w).compile(
        ).as_text()
    return text.count('"kind":"__ynn_fusion"')

  # XLA's default fuses the reduction and the dot into YNNPACK; ours only
  # the dot.
  assert fusions(None) > fusions(options) == 1


def test_programs_compiled_with_the_options_match_numpy():
  rng = np.random.default_rng(0)
  x, y = (rng.normal(size=(8, 500, 2)).astype(np.float32) for _ in range(2))
  got = jax.jit(_squared_distance_sum,
                compiler_options=compile_options.compiler_options())(x, y)
  want = np.exp(-((x.astype(np.float64) - y) ** 2).sum(-1)).sum()
  np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_an_xla_without_the_option_keeps_its_defaults(monkeypatch):
  monkeypatch.setattr(compile_options, "CPU_OPTIONS",
                      {"xla_cpu_experimental_ynn_fusion_type": "NOT_A_TYPE"})
  assert compile_options.compiler_options() is None
