"""On a GPU or TPU only (`pytest -m accelerator`; skipped on a CPU by
tests/conftest.py): the paths a CPU never takes. The on-device loop
(`device_loop`, "auto" there) takes the dispatched chunk's steps and stops
on NaN; plain-vmap ("grouped") convolutions train each member as its own
single model; a real multi-device mesh gives the one-device result.

`python -m experiments.benchmark device` runs these first."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from latent_jax import build_model
from latent_jax.train import sharding
from latent_jax.train.chunk import init_train_state, make_chunk, resolve_chunk_mode
from latent_jax.train.ensemble import (Member, member_keys,
                                       resolve_conv_batching, stack_members)
from latent_jax.train.step import init_ensemble_state, make_train_chunk

pytestmark = pytest.mark.accelerator

MEMBERS = (Member(0, 0.5, 0), Member(1, 2.0, 1))


class _Config:
  """The field `member_keys` reads."""
  seed = 3


def _models():
  return [build_model("vae", "small", (8, 8, 1), 2,
                      rngs=nnx.Rngs(params=m.seed)) for m in MEMBERS]


def _chunk(graphdef, optimizer, **options):
  return make_train_chunk(graphdef, optimizer, likelihood="bernoulli",
                          gaussian_scale=1.0, kl_warmup_steps=0,
                          batch_size=16, num_train=40, **options)


def test_device_loop_is_auto_and_takes_the_dispatched_steps(
    tiny_images, regression, regression_update, regression_optimizer):
  assert resolve_chunk_mode("auto") == "device_loop"
  model = _models()[0]
  graphdef, params = nnx.split(model)
  optimizer = optax.sgd(0.1)
  results = {}
  with jax.default_matmul_precision("highest"):
    for mode in ("device_loop", "dispatch"):
      state = init_train_state(jax.tree.map(jnp.copy, params), optimizer)
      results[mode] = _chunk(graphdef, optimizer, chunk_mode=mode)(
          state, tiny_images, jax.random.key(2), jax.random.key(3),
          jnp.float32(0.5), 5)
  (loop, loop_metrics), (dispatch, _) = (results["device_loop"],
                                         results["dispatch"])
  assert int(loop.step) == int(dispatch.step) == 5
  for a, b in zip(jax.tree.leaves(loop.params),
                  jax.tree.leaves(dispatch.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert int(loop_metrics["first_nonfinite_step"]) == -1
  x, y = regression  # the on-device loop finds a NaN at its step
  found = make_chunk(regression_update(), "device_loop")(
      init_train_state(jnp.zeros(3), regression_optimizer),
      (x, y, jnp.int32(5)), 8)
  assert int(found.first_nonfinite_step) == 5


def test_grouped_convolutions_train_each_member_as_its_single_model(
    tiny_images):
  assert resolve_conv_batching("auto") == "grouped"
  models = _models()
  graphdef = nnx.split(models[0])[0]
  optimizer = optax.sgd(0.1)
  data_key, model_keys, kl_weights = member_keys(_Config, MEMBERS)[:3]
  with jax.default_matmul_precision("highest"):
    state = init_ensemble_state(
        stack_members([nnx.split(m)[1] for m in models]), optimizer)
    state, _ = _chunk(graphdef, optimizer, conv_batching="grouped")(
        state, tiny_images, data_key, model_keys, kl_weights, 4)
    single_chunk = _chunk(graphdef, optimizer)
    for member, model in zip(MEMBERS, models):
      single = init_train_state(nnx.split(model)[1], optimizer)
      single, _ = single_chunk(single, tiny_images, data_key,
                               model_keys[member.index],
                               kl_weights[member.index], 4)
      got = jax.tree.map(lambda leaf: leaf[member.index], state.params)
      for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(single.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(jax.device_count() < 2, reason="one device: no mesh")
def test_a_real_multi_device_mesh_gives_the_one_device_result(tiny_images):
  results = {}
  for name, devices in (("one", jax.devices()[:1]), ("all", None)):
    mesh = sharding.make_mesh(16, len(MEMBERS), devices=devices)
    models = _models()
    graphdef = nnx.split(models[0])[0]
    optimizer = optax.adam(1e-3)
    state = sharding.shard_members(init_ensemble_state(
        stack_members([nnx.split(m)[1] for m in models]), optimizer), mesh)
    everywhere = sharding.replicated(mesh)
    keys = jax.device_put(member_keys(_Config, MEMBERS)[:3], everywhere)
    with jax.default_matmul_precision("highest"):
      state, metrics = _chunk(
          graphdef, optimizer,
          batch_sharding=sharding.batch_sharding(mesh))(
              state, sharding.put(np.asarray(tiny_images), everywhere),
              *keys, 4)
    results[name] = (jax.device_get(state.params), jax.device_get(metrics))
  assert len(jax.devices()) >= 2
  np.testing.assert_allclose(results["all"][1]["loss"],
                             results["one"][1]["loss"], rtol=1e-4)
  for a, b in zip(jax.tree.leaves(results["all"][0]),
                  jax.tree.leaves(results["one"][0])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
