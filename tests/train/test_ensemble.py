"""Ensembles: each member takes exactly the steps of its own single run."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from experiments.configs import vae_digits
from latent_jax import build_model, losses
from latent_jax.train import loop
from latent_jax.train.checkpointing import Checkpointer
from latent_jax.train.ensemble import (ensemble_members, member_keys,
                                       resolve_conv_batching, stack_members)
from latent_jax.train.metrics_writer import read_records
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
def images():
  return jax.random.uniform(jax.random.key(1), (NUM_TRAIN, 8, 8, 1))


@pytest.fixture(scope="module")
def references(images):
  return {(w, s): _reference_member(images, w, s)
          for w in KL_WEIGHTS for s in SEEDS}


@pytest.mark.parametrize("chunk_mode,conv_batching", [
    ("dispatch", "per_member"), ("device_loop", "grouped")])
def test_member_i_equals_its_single_model(images, references, chunk_mode,
                                          conv_batching):
  config = _Config()
  members = [m for m in ensemble_members(_config(KL_WEIGHTS, SEEDS))]
  graphdef, _ = nnx.split(_model(0))
  optimizer = optax.adam(1e-3)
  state = init_ensemble_state(
      stack_members([nnx.split(_model(m.seed))[1] for m in members]),
      optimizer)
  chunk = make_train_chunk(graphdef, optimizer, likelihood="bernoulli",
                           gaussian_scale=1.0, kl_warmup_steps=0,
                           batch_size=BATCH, num_train=NUM_TRAIN,
                           chunk_mode=chunk_mode, conv_batching=conv_batching)
  data_key, model_keys, kl_weights = member_keys(config, members)
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


def _config(kl_weights=(), seeds=(), **overrides):
  config = vae_digits.get_config("smoke")
  config.unlock()
  config.ensemble.kl_weights = tuple(kl_weights)
  config.ensemble.seeds = tuple(seeds)
  config.eval.figures = "loss_curves,reconstructions"
  config.eval.iwae_samples = 0  # the report's own tests cover it
  for path, value in overrides.items():
    section, _, field = path.rpartition(".")
    (config[section] if section else config)[field] = value
  config.lock()
  return config


def test_members_are_kl_weight_major_and_default_to_the_single_run():
  members = ensemble_members(_config((0.5, 2.0), (0, 3)))
  assert [(m.index, m.kl_weight, m.seed) for m in members] == [
      (0, 0.5, 0), (1, 0.5, 3), (2, 2.0, 0), (3, 2.0, 3)]
  single = ensemble_members(_config(**{"loss.kl_weight": 0.25,
                                       "seed": 4}))
  assert [(m.kl_weight, m.seed) for m in single] == [(0.25, 4)]
  assert members[1].name == "kl0.5_seed3"


@pytest.mark.parametrize("kl_weights,seeds,key", [
    ((0.5, 0.5), (), "ensemble.kl_weights"),
    ((-1.0,), (), "ensemble.kl_weights"),
    ((), (1, 1), "ensemble.seeds"),
    ((), (0.5,), "ensemble.seeds"),
])
def test_bad_member_lists_name_the_key(kl_weights, seeds, key):
  with pytest.raises(ValueError, match=key.replace(".", r"\.")):
    ensemble_members(_config(kl_weights, seeds))


def test_conv_batching_modes():
  assert resolve_conv_batching("auto", "cpu") == "per_member"
  assert resolve_conv_batching("auto", "gpu") == "grouped"
  with pytest.raises(ValueError, match="ensemble.conv_batching"):
    resolve_conv_batching("stacked")


def _final_state(workdir):
  checkpointer = Checkpointer(workdir)
  state, meta = checkpointer.restore_latest()
  checkpointer.close()
  return state, meta


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("ensemble"))
  config = _config((0.5, 1.0), (0, 1))
  summary = loop.train_and_evaluate(config, workdir)
  return config, workdir, summary


def test_ensemble_run_writes_every_member(ensemble_run):
  config, workdir, summary = ensemble_run
  with open(os.path.join(workdir, "eval.json")) as file:
    written = json.load(file)
  assert written == json.loads(json.dumps(summary))
  entries = written["members"]
  assert [(e["kl_weight"], e["seed"]) for e in entries] == [
      (0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)]
  for entry, member in zip(entries, ensemble_members(config)):
    out_dir = loop.member_dir(workdir, member)
    with open(os.path.join(out_dir, "eval.json")) as file:
      assert json.load(file)["neg_elbo"] == pytest.approx(entry["neg_elbo"])
    for name in ("loss_curves", "reconstructions"):
      assert os.path.getsize(os.path.join(out_dir, "figures",
                                          f"{name}.png")) > 5000
    assert entry["neg_elbo"] == pytest.approx(entry["recon"] + entry["kl"])
  records = read_records(workdir)
  last_step = max(r["step"] for r in records)
  finals = [r for r in records if r["step"] == last_step
            and r["split"] == "train"]
  assert sorted(r["member"] for r in finals) == [0, 1, 2, 3]
  state, meta = _final_state(workdir)
  assert meta["members"] == [[0.5, 0], [0.5, 1], [1.0, 0], [1.0, 1]]
  assert jax.tree.leaves(state)[0].shape[0] == 4


def test_member_of_a_run_equals_its_one_member_run(ensemble_run, tmp_path):
  config, workdir, summary = ensemble_run
  single_dir = str(tmp_path / "single")
  single = loop.train_and_evaluate(
      _config(**{"loss.kl_weight": 1.0, "ensemble.seeds": (1,)}), single_dir)
  member = summary["members"][3]  # (kl_weight 1.0, seed 1)
  for name in ("neg_elbo", "recon", "kl", "mse", "active_units"):
    assert member[name] == pytest.approx(single[name], rel=1e-4, abs=1e-5)
  ensemble_state, _ = _final_state(workdir)
  single_state, _ = _final_state(single_dir)
  for a, b in zip(jax.tree.leaves(ensemble_state["params"]),
                  jax.tree.leaves(single_state["params"])):
    np.testing.assert_allclose(a[3], b[0], rtol=2e-4, atol=2e-6)
  # One member keeps the single-run layout: metrics at the top, no members/.
  assert "members" not in single
  assert not os.path.exists(os.path.join(single_dir, loop.MEMBERS_DIR))
  assert os.path.exists(os.path.join(single_dir, "figures",
                                     "reconstructions.png"))


def test_restore_and_reevaluate_an_ensemble(ensemble_run):
  _, workdir, summary = ensemble_run
  with pytest.raises(ValueError, match="member=<0..3>"):
    loop.restore_run(workdir)
  _, _, model, step = loop.restore_run(workdir, member=2)
  assert step == summary["step"] and model.latent_dim == 2
  again = loop.evaluate_workdir(workdir, "reconstructions")
  assert again["members"][2]["neg_elbo"] == pytest.approx(
      summary["members"][2]["neg_elbo"], rel=1e-6)
  with pytest.raises(ValueError, match="ensemble.kl_weights"):
    loop.train_and_evaluate(_config((0.5, 2.0), (0, 1)), workdir)


def test_runs_from_before_ensembles_restore_and_resume(tmp_path):
  """A one-model checkpoint (no member axis) and a config.json without the
  ensemble section, as every earlier run wrote them."""
  from latent_jax.train import setup
  from latent_jax.train.optimizers import make_optimizer
  from latent_jax.train.step import init_train_state

  config = _config()
  workdir = str(tmp_path)
  old_config = config.to_dict()
  del old_config["ensemble"], old_config["sweep"]
  with open(os.path.join(workdir, loop.CONFIG_FILE), "w") as file:
    json.dump(old_config, file, default=list)
  dataset = setup.load_configured_dataset(config)
  steps = config.train.epochs * (dataset.num_train // config.train.batch_size)
  params = nnx.split(setup.create_model(config, dataset.image_shape, 5))[1]
  optimizer, _ = make_optimizer(config.train, steps)
  checkpointer = Checkpointer(workdir)
  checkpointer.save(steps, init_train_state(params, optimizer)._replace(
      step=jnp.int32(steps)), {"step": steps})
  checkpointer.close()

  _, _, model, step = loop.restore_run(workdir)
  assert step == steps
  for a, b in zip(jax.tree.leaves(nnx.split(model)[1]),
                  jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)
  # The same command as before resumes (here: a finished run re-evaluates).
  summary = loop.train_and_evaluate(config, workdir)
  assert "neg_elbo" in summary and "members" not in summary
