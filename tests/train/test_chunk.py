"""The chunk builder runs any update the same way in both modes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from latent_jax.train.chunk import (init_train_state, make_chunk,
                                    resolve_chunk_mode)

def _plain_loop(x, y, steps, optimizer):
  """The reference: optax in a Python loop, no engine."""
  w = jnp.zeros(3)
  opt_state = optimizer.init(w)
  losses = []
  for _ in range(steps):
    loss, grads = jax.value_and_grad(lambda v: jnp.mean((x @ v - y) ** 2))(w)
    updates, opt_state = optimizer.update(grads, opt_state)
    w = optax.apply_updates(w, updates)
    losses.append(float(loss))
  return np.asarray(w), losses


@pytest.mark.parametrize("mode", ["device_loop", "dispatch"])
def test_chunks_take_the_steps_of_a_plain_loop(regression, regression_update,
                                               regression_optimizer, mode):
  x, y = regression
  chunk = make_chunk(regression_update(), mode)
  state = init_train_state(jnp.zeros(3), regression_optimizer)
  means = []
  for num_steps in (3, 3, 1):  # 7 steps in uneven chunks
    result = chunk(state, (x, y, jnp.int32(-1)), num_steps)
    state = result.state
    means.append(float(result.means["loss"]))
    assert int(result.num_steps) == num_steps
    assert int(result.first_nonfinite_step) == -1
  expected_w, losses = _plain_loop(x, y, 7, regression_optimizer)
  np.testing.assert_allclose(np.asarray(state.params), expected_w, rtol=1e-5)
  np.testing.assert_allclose(means, [np.mean(losses[:3]), np.mean(losses[3:6]),
                                     losses[6]], rtol=1e-5)
  assert int(state.step) == 7


def test_the_chunk_carry_restarts_each_chunk(regression, regression_update,
                                            regression_optimizer):
  x, y = regression
  for mode in ("device_loop", "dispatch"):
    chunk = make_chunk(regression_update(with_aux=True), mode)
    result = chunk(init_train_state(jnp.zeros(3), regression_optimizer),
                   (x, y, jnp.int32(-1)), 4)
    # aux counts 1..4 within the chunk: mean 2.5
    assert float(result.means["chunk_step"]) == pytest.approx(2.5)


@pytest.mark.parametrize("mode", ["device_loop", "dispatch"])
def test_the_first_nonfinite_step_and_metric_are_reported(
    regression, regression_update, regression_optimizer, mode):
  x, y = regression
  chunk = make_chunk(regression_update(), mode)
  result = chunk(init_train_state(jnp.zeros(3), regression_optimizer),
                 (x, y, jnp.int32(5)), 8)
  assert int(result.first_nonfinite_step) == 5
  assert int(result.nonfinite_bits) == 1  # bit 0: "loss"; grad_norm finite


def test_dispatch_mode_stops_between_steps_when_asked(
    regression, regression_update, regression_optimizer):
  x, y = regression
  chunk = make_chunk(regression_update(), "dispatch")
  calls = []
  stop = lambda: calls.append(1) or len(calls) > 3
  result = chunk(init_train_state(jnp.zeros(3), regression_optimizer),
                 (x, y, jnp.int32(-1)), 50, stop)
  assert int(result.num_steps) == 3 and int(result.state.step) == 3


def test_precompile_runs_nothing_and_donates_nothing(
    regression, regression_update, regression_optimizer):
  x, y = regression
  for mode in ("device_loop", "dispatch"):
    chunk = make_chunk(regression_update(), mode)
    state = init_train_state(jnp.zeros(3), regression_optimizer)
    chunk.precompile(state, (x, y, jnp.int32(-1)))
    assert int(state.step) == 0 and np.all(np.asarray(state.params) == 0)


def test_auto_mode_picks_dispatch_on_cpu_and_the_loop_elsewhere():
  assert resolve_chunk_mode("auto", "cpu") == "dispatch"
  assert resolve_chunk_mode("auto", "gpu") == "device_loop"
  assert resolve_chunk_mode("auto", "tpu") == "device_loop"
  with pytest.raises(ValueError, match="train.chunk_mode"):
    resolve_chunk_mode("turbo")


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="an XLA:CPU option")
@pytest.mark.parametrize("mode", ["device_loop", "dispatch"])
def test_compiler_options_reach_every_program(regression, regression_update,
                                              regression_optimizer, mode):
  x, y = regression
  state = init_train_state(jnp.zeros(3), regression_optimizer)
  bad = {"xla_cpu_experimental_ynn_fusion_type": "NOT_A_FUSION_TYPE"}
  with pytest.raises(jax.errors.JaxRuntimeError, match="NOT_A_FUSION_TYPE"):
    make_chunk(regression_update(), mode, bad).precompile(
        state, (x, y, jnp.int32(-1)))
  good = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}
  result = make_chunk(regression_update(), mode, good)(
      state, (x, y, jnp.int32(-1)), 7)
  expected_w, _ = _plain_loop(x, y, 7, regression_optimizer)
  np.testing.assert_allclose(np.asarray(result.state.params), expected_w,
                             rtol=1e-5)
