"""Ensembles: each member takes exactly the steps of its own single model;
member lists, conv batching modes and the per-member rule's JAX guard."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from latent_jax import build_model, losses
from latent_jax.train import ensemble
from latent_jax.train.ensemble import (ensemble_members, member_keys,
                                       resolve_conv_batching, stack_members)
from latent_jax.train.step import init_ensemble_state, make_train_chunk

KL_WEIGHTS, SEEDS = (0.5, 2.0), (0, 3)
NUM_TRAIN, BATCH, STEPS, DATA_SEED = 40, 16, 5, 7


class _Config:
  """The fields `member_keys` reads."""
  seed = DATA_SEED


def _model(seed):
  return build_model("vae", "small", (8, 8, 1), 2, rngs=nnx.Rngs(params=seed))


def _reference_member(images, kl_weight, seed):
  """A single model trained by a plain optax loop written from the spec.

  Batch of step s: rows [p*B, (p+1)*B) of the permutation of epoch e, where
  (e, p) = divmod(s, steps per epoch), drawn from fold_in(data key, e);
  posterior noise from fold_in(fold_in(key(seed), 1), s).
  """
  graphdef, params = nnx.split(_model(seed))
  optimizer = optax.adam(1e-3)
  opt_state = optimizer.init(params)
  data_key = jax.random.fold_in(jax.random.key(DATA_SEED), 0)
  noise_key = jax.random.fold_in(jax.random.key(seed), 1)

  def loss(params, batch, key):
    terms = nnx.merge(graphdef, params).loss_terms(batch, key, "bernoulli")
    return jnp.mean(losses.negative_elbo(terms["recon"], terms["kl"],
                                         kl_weight))

  grad = jax.jit(jax.grad(loss))
  steps_per_epoch = NUM_TRAIN // BATCH
  for step in range(STEPS):
    epoch, position = divmod(step, steps_per_epoch)
    order = jax.random.permutation(jax.random.fold_in(data_key, epoch),
                                   NUM_TRAIN)
    batch = images[order[position * BATCH:(position + 1) * BATCH]]
    grads = grad(params, batch, jax.random.fold_in(noise_key, step))
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
  return params


@pytest.fixture(scope="module")
def references(tiny_images):
  assert tiny_images.shape == (NUM_TRAIN, 8, 8, 1)
  return {(w, s): _reference_member(tiny_images, w, s)
          for w in KL_WEIGHTS for s in SEEDS}


def _assert_members_equal_references(images, references, chunk_mode,
                                     conv_batching, ensemble_config):
  """Trains the KL_WEIGHTS x SEEDS ensemble STEPS steps; each member must
  equal its single-model reference."""
  config = _Config()
  members = [m for m in ensemble_members(ensemble_config(KL_WEIGHTS, SEEDS))]
  graphdef, _ = nnx.split(_model(0))
  optimizer = optax.adam(1e-3)
  state = init_ensemble_state(
      stack_members([nnx.split(_model(m.seed))[1] for m in members]),
      optimizer)
  chunk = make_train_chunk(graphdef, optimizer, likelihood="bernoulli",
                           gaussian_scale=1.0, kl_warmup_steps=0,
                           batch_size=BATCH, num_train=NUM_TRAIN,
                           chunk_mode=chunk_mode, conv_batching=conv_batching)
  data_key, model_keys, kl_weights = member_keys(config, members)[:3]
  state, first = chunk(state, images, data_key, model_keys, kl_weights, 2)
  state, _ = chunk(state, images, data_key, model_keys, kl_weights,
                   STEPS - 2)
  assert first["loss"].shape == (len(members),)
  assert int(state.step) == STEPS
  for member in members:
    expected = references[(member.kl_weight, member.seed)]
    got = jax.tree.map(lambda leaf: leaf[member.index], state.params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
  # Members differ (seeds and KL weights matter): not one model copied.
  leaf = jax.tree.leaves(state.params)[0]
  assert not np.allclose(leaf[0], leaf[1])


def test_member_i_equals_its_single_model(tiny_images, references,
                                          ensemble_config):
  # "grouped" (plain vmap) under device_loop: the fallback test below.
  _assert_members_equal_references(tiny_images, references, "dispatch",
                                   "per_member", ensemble_config)


def test_per_member_guard_names_the_jax_version(monkeypatch):
  # The pinned JAX (constraints.txt) is one the rule is tested on.
  assert ensemble.per_member_problem() is None
  low, high = ensemble.PER_MEMBER_JAX
  below = f"{low[0]}.{low[1] - 1}.9"
  at_high = ".".join(map(str, high))
  for version in (below, at_high, "not-a-version"):
    assert version in ensemble.per_member_problem(version)
  assert ensemble.per_member_problem(".".join(map(str, low))) is None
  monkeypatch.delattr(jax.custom_batching, "custom_vmap")
  assert "jax.custom_batching.custom_vmap" in ensemble.per_member_problem()


def test_untested_jax_falls_back_to_plain_vmap(tiny_images, references,
                                               ensemble_config, monkeypatch):
  """"per_member" on an untested JAX warns and trains through plain
  `jax.vmap` ("grouped"): every member still equals its single model."""
  monkeypatch.setattr(ensemble, "PER_MEMBER_PROBLEM",
                      ensemble.per_member_problem("0.99.0"))

  def per_member_rule(*args):
    raise AssertionError("the per-member batching rule ran")

  monkeypatch.setattr(ensemble, "_eval_jaxpr", per_member_rule)
  with pytest.warns(RuntimeWarning, match=r"JAX 0\.99\.0.*'grouped'"):
    assert resolve_conv_batching("auto", "cpu") == "grouped"
  with pytest.warns(RuntimeWarning, match=r"JAX 0\.99\.0"):
    _assert_members_equal_references(tiny_images, references,
                                     "device_loop", "per_member",
                                     ensemble_config)


def test_members_are_kl_weight_major_and_default_to_the_single_run(
    ensemble_config):
  members = ensemble_members(ensemble_config((0.5, 2.0), (0, 3)))
  assert [(m.index, m.kl_weight, m.seed) for m in members] == [
      (0, 0.5, 0), (1, 0.5, 3), (2, 2.0, 0), (3, 2.0, 3)]
  single = ensemble_members(ensemble_config(**{"loss.kl_weight": 0.25,
                                               "seed": 4}))
  assert [(m.kl_weight, m.seed) for m in single] == [(0.25, 4)]
  assert members[1].name == "kl0.5_seed3"


@pytest.mark.parametrize("kl_weights,seeds,key", [
    ((0.5, 0.5), (), "ensemble.kl_weights"),
    ((-1.0,), (), "ensemble.kl_weights"),
    ((), (1, 1), "ensemble.seeds"),
    ((), (0.5,), "ensemble.seeds"),
])
def test_bad_member_lists_name_the_key(kl_weights, seeds, key,
                                       ensemble_config):
  with pytest.raises(ValueError, match=key.replace(".", r"\.")):
    ensemble_members(ensemble_config(kl_weights, seeds))


def test_conv_batching_modes():
  assert resolve_conv_batching("auto", "cpu") == "per_member"
  assert resolve_conv_batching("auto", "gpu") == "grouped"
  with pytest.raises(ValueError, match="ensemble.conv_batching"):
    resolve_conv_batching("stacked")
