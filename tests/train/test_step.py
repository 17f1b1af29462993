"""The two chunk modes run the same steps; auto picks one per platform; a
dispatched chunk stops when asked."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from latent_jax import build_model
from latent_jax.train.chunk import init_train_state
from latent_jax.train.step import make_train_chunk


def test_device_loop_and_dispatch_take_the_same_steps(tiny_images):
  model = build_model("vae", "small", (8, 8, 1), 2, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  optimizer = optax.adam(1e-3)
  images = tiny_images
  results = {}
  for mode in ("device_loop", "dispatch"):
    chunk = make_train_chunk(graphdef, optimizer, likelihood="bernoulli",
                             gaussian_scale=1.0, kl_warmup_steps=3,
                             batch_size=16, num_train=40, chunk_mode=mode)
    state = init_train_state(jax.tree.map(jnp.copy, params), optimizer)
    state, first = chunk(state, images, jax.random.key(2),
                         jax.random.key(3), jnp.float32(0.5), 3)
    state, second = chunk(state, images, jax.random.key(2),
                          jax.random.key(3), jnp.float32(0.5), 4)
    results[mode] = (state, first, second)
  loop_state, loop_first, loop_second = results["device_loop"]
  dispatch_state, dispatch_first, dispatch_second = results["dispatch"]
  assert int(loop_state.step) == int(dispatch_state.step) == 7
  for a, b in zip(jax.tree.leaves(loop_state.params),
                  jax.tree.leaves(dispatch_state.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  for name in ("loss", "recon", "kl", "grad_norm"):
    np.testing.assert_allclose(loop_second[name], dispatch_second[name],
                               rtol=1e-4)
  assert int(loop_first["first_nonfinite_step"]) == -1


def test_dispatch_chunk_stops_early_when_asked():
  model = build_model("ae", "keras_mlp", (8, 8, 1), 2, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  optimizer = optax.sgd(1e-3)
  chunk = make_train_chunk(graphdef, optimizer, likelihood="bernoulli",
                           gaussian_scale=1.0, kl_warmup_steps=0,
                           batch_size=8, num_train=32, chunk_mode="dispatch")
  calls = []

  def stop_after_three():
    calls.append(None)
    return len(calls) > 3

  state, metrics = chunk(init_train_state(params, optimizer),
                         jnp.zeros((32, 8, 8, 1)), jax.random.key(0),
                         jax.random.key(1), jnp.float32(1.0), 100,
                         stop_after_three)
  assert int(state.step) == int(metrics["num_steps"]) == 3
  assert np.isfinite(float(metrics["loss"]))


def test_bfloat16_compute_matches_float32_and_keeps_float32_state(
    tiny_images):
  # Mixed precision: the same steps within bfloat16's ~3 significant digits,
  # with parameters, optimiser state and the logged losses in float32. An
  # MLP VAE: compiles in a fraction of a conv VAE's time.
  model = build_model("vae", "keras_mlp", (8, 8, 1), 2, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  optimizer = optax.adam(1e-3)
  results = {}
  for dtype in ("float32", "bfloat16"):
    chunk = make_train_chunk(graphdef, optimizer, likelihood="bernoulli",
                             gaussian_scale=1.0, kl_warmup_steps=0,
                             batch_size=16, num_train=40,
                             chunk_mode="dispatch", compute_dtype=dtype)
    state = init_train_state(jax.tree.map(jnp.copy, params), optimizer)
    results[dtype] = chunk(state, tiny_images, jax.random.key(2),
                           jax.random.key(3), jnp.float32(0.5), 3)
  (state32, metrics32), (state16, metrics16) = (results["float32"],
                                                results["bfloat16"])
  for name in ("loss", "recon", "kl"):
    assert metrics16[name].dtype == jnp.float32
    np.testing.assert_allclose(metrics16[name], metrics32[name], rtol=2e-2)
  assert not np.array_equal(metrics16["loss"], metrics32["loss"])
  for leaf in jax.tree.leaves((state16.params, state16.opt_state)):
    assert leaf.dtype in (jnp.float32, jnp.int32), leaf.dtype
  for a, b in zip(jax.tree.leaves(state16.params),
                  jax.tree.leaves(state32.params)):
    np.testing.assert_allclose(a, b, atol=1e-2)


def test_an_unknown_compute_dtype_names_the_key():
  model = build_model("ae", "keras_mlp", (8, 8, 1), 2, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="train.compute_dtype='float16'"):
    make_train_chunk(nnx.split(model)[0], optax.sgd(1e-3),
                     likelihood="bernoulli", gaussian_scale=1.0,
                     kl_warmup_steps=0, batch_size=8, num_train=32,
                     compute_dtype="float16")
