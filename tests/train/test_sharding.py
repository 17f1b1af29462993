"""Data and member parallelism: 4 CPU devices give the 1-device results.

A whole run on several devices against one device, and its checkpoint
restored on one device: tests/runs/test_multihost.py (2 devices, beside its
2-process job).
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from latent_jax.train.sharding import mesh_shape


def test_mesh_shape_prefers_data_parallelism():
  assert mesh_shape(1, 64, 1) == (1, 1)
  assert mesh_shape(4, 64, 1) == (1, 4)
  assert mesh_shape(4, 64, 8) == (1, 4)
  # A batch of 6 cannot split 4 ways: 2 devices on members, 2 on data.
  assert mesh_shape(4, 6, 2) == (2, 2)
  assert mesh_shape(4, 6, 8) == (2, 2)
  assert mesh_shape(4, 64, 4, member_devices=4) == (4, 1)
  with pytest.raises(ValueError, match="ensemble.member_devices"):
    mesh_shape(4, 64, 3, member_devices=2)
  with pytest.raises(ValueError, match="train.batch_size"):
    mesh_shape(4, 6, 1)
  with pytest.raises(ValueError, match="train.batch_size"):
    mesh_shape(4, 6, 4, member_devices=1)


# Runs with 4 host devices: a few chunks on 1 device, on a data=4 mesh and on
# a member=2 x data=2 mesh.
_SCRIPT = textwrap.dedent("""
    import json
    import jax, numpy as np, optax
    from flax import nnx
    from latent_jax import build_model
    from latent_jax.train import sharding
    from latent_jax.train.ensemble import Member, member_keys, stack_members
    from latent_jax.train.step import init_ensemble_state, make_train_chunk

    assert jax.device_count() == 4, jax.devices()
    members = [Member(0, 0.5, 0), Member(1, 2.0, 1)]
    images = np.asarray(jax.random.uniform(jax.random.key(1), (48, 8, 8, 1)))
    class Config:
      seed = 3

    def train(mesh):
      models = [build_model("vae", "small", (8, 8, 1), 2,
                            rngs=nnx.Rngs(params=m.seed)) for m in members]
      graphdef = nnx.split(models[0])[0]
      optimizer = optax.adam(1e-3)
      state = init_ensemble_state(
          stack_members([nnx.split(m)[1] for m in models]), optimizer)
      state = sharding.shard_members(state, mesh)
      chunk = make_train_chunk(
          graphdef, optimizer, likelihood="bernoulli", gaussian_scale=1.0,
          kl_warmup_steps=0, batch_size=16, num_train=48,
          batch_sharding=sharding.batch_sharding(mesh))
      everywhere = sharding.replicated(mesh)
      keys = jax.device_put(member_keys(Config, members), everywhere)
      on_mesh = sharding.put(images, everywhere)
      state, first = chunk(state, on_mesh, *keys[:3], 4)
      state, second = chunk(state, on_mesh, *keys[:3], 3)
      leaf = jax.tree.leaves(state.params)[-1]
      return (jax.device_get(state.params), jax.device_get(second),
              list(leaf.sharding.shard_shape(leaf.shape)))

    single, single_metrics, _ = train(
        sharding.make_mesh(16, 2, devices=jax.devices()[:1]))
    out = {}
    for name, member_devices in (("data4", 0), ("member2_data2", 2)):
      mesh = sharding.make_mesh(16, 2, member_devices)
      params, metrics, shard = train(mesh)
      out[name] = {
          "mesh": dict(mesh.shape), "shard_shape": shard,
          "max_param_diff": max(float(np.max(np.abs(a - b))) for a, b in
                                zip(jax.tree.leaves(params),
                                    jax.tree.leaves(single))),
          "max_loss_rel_diff": float(np.max(np.abs(
              metrics["loss"] / single_metrics["loss"] - 1)))}
    print("RESULT" + json.dumps(out))
""")


@pytest.fixture(scope="module")
def four_devices(repo_root):
  env = dict(os.environ,
             XLA_FLAGS="--xla_force_host_platform_device_count=4",
             PYTHONPATH=repo_root + os.pathsep
             + os.environ.get("PYTHONPATH", ""))
  result = subprocess.run([sys.executable, "-c", _SCRIPT], env=env,
                          cwd=repo_root, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  line = [l for l in result.stdout.splitlines() if l.startswith("RESULT")]
  return json.loads(line[-1][len("RESULT"):])


def test_four_device_meshes_equal_one_device(four_devices):
  out = four_devices
  assert out["data4"]["mesh"] == {"member": 1, "data": 4}
  assert out["member2_data2"]["mesh"] == {"member": 2, "data": 2}
  # Member-sharded parameters: each device holds one member's slice.
  assert out["member2_data2"]["shard_shape"][0] == 1
  assert out["data4"]["shard_shape"][0] == 2
  for name in ("data4", "member2_data2"):
    assert out[name]["max_param_diff"] < 1e-5, out[name]
    assert out[name]["max_loss_rel_diff"] < 1e-5, out[name]


def test_put_builds_global_arrays_from_host_copies_keeping_key_types():
  """`put`/`replicate` (the multi-process path for host arrays: a callback
  per addressable shard) give the host values, keys stay keys."""
  from latent_jax.train import sharding
  mesh = sharding.make_mesh(batch_size=4, num_members=1)
  host = np.arange(12, dtype=np.float32).reshape(3, 4)
  placed = sharding.put(host, sharding.replicated(mesh))
  np.testing.assert_array_equal(np.asarray(placed), host)
  assert placed.sharding == sharding.replicated(mesh)
  keys = jax.random.split(jax.random.key(3), 2)
  tree = sharding.replicate({"keys": keys, "w": host}, mesh)
  assert jax.dtypes.issubdtype(tree["keys"].dtype, jax.dtypes.prng_key)
  np.testing.assert_array_equal(jax.random.key_data(tree["keys"]),
                                jax.random.key_data(keys))
  members = sharding.shard_members({"w": host, "step": np.int32(5)}, mesh)
  assert members["w"].sharding == sharding.member_sharding(mesh)
  assert int(members["step"]) == 5
