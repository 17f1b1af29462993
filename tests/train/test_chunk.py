"""The chunk builder runs any update the same way in both modes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from latent_jax.train.chunk import (TrainState, Update, init_train_state,
                                    make_chunk, resolve_chunk_mode)

OPTIMIZER = optax.adam(0.1)


def _regression_update(with_aux=False):
  """Least squares on fixed data; `inputs.bad_step` poisons that step."""

  def step(state, aux, inputs):
    x, y, bad_step = inputs
    loss_fn = lambda w: jnp.mean((x @ w - y) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    loss = jnp.where(state.step == bad_step, jnp.nan, loss)
    updates, opt_state = OPTIMIZER.update(grads, state.opt_state)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
    if with_aux:
      aux = aux + 1
      metrics["chunk_step"] = aux.astype(jnp.float32)
    return TrainState(params, opt_state, state.step + 1), aux, metrics

  begin = (lambda state, inputs: jnp.int32(0)) if with_aux else None
  return Update(step=step, begin=begin, watch=("loss", "grad_norm"))


@pytest.fixture(scope="module")
def problem():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((32, 3)).astype(np.float32)
  y = (x @ np.array([1.0, -2.0, 0.5], np.float32)).astype(np.float32)
  return jnp.asarray(x), jnp.asarray(y)


def _plain_loop(x, y, steps):
  """The reference: optax in a Python loop, no engine."""
  w = jnp.zeros(3)
  opt_state = OPTIMIZER.init(w)
  losses = []
  for _ in range(steps):
    loss, grads = jax.value_and_grad(lambda v: jnp.mean((x @ v - y) ** 2))(w)
    updates, opt_state = OPTIMIZER.update(grads, opt_state)
    w = optax.apply_updates(w, updates)
    losses.append(float(loss))
  return np.asarray(w), losses


@pytest.mark.parametrize("mode", ["device_loop", "dispatch"])
def test_chunks_take_the_steps_of_a_plain_loop(problem, mode):
  x, y = problem
  chunk = make_chunk(_regression_update(), mode)
  state = init_train_state(jnp.zeros(3), OPTIMIZER)
  means = []
  for num_steps in (3, 3, 1):  # 7 steps in uneven chunks
    result = chunk(state, (x, y, jnp.int32(-1)), num_steps)
    state = result.state
    means.append(float(result.means["loss"]))
    assert int(result.num_steps) == num_steps
    assert int(result.first_nonfinite_step) == -1
  expected_w, losses = _plain_loop(x, y, 7)
  np.testing.assert_allclose(np.asarray(state.params), expected_w, rtol=1e-5)
  np.testing.assert_allclose(means, [np.mean(losses[:3]), np.mean(losses[3:6]),
                                     losses[6]], rtol=1e-5)
  assert int(state.step) == 7


def test_the_chunk_carry_restarts_each_chunk(problem):
  x, y = problem
  for mode in ("device_loop", "dispatch"):
    chunk = make_chunk(_regression_update(with_aux=True), mode)
    result = chunk(init_train_state(jnp.zeros(3), OPTIMIZER),
                   (x, y, jnp.int32(-1)), 4)
    # aux counts 1..4 within the chunk: mean 2.5
    assert float(result.means["chunk_step"]) == pytest.approx(2.5)


@pytest.mark.parametrize("mode", ["device_loop", "dispatch"])
def test_the_first_nonfinite_step_and_metric_are_reported(problem, mode):
  x, y = problem
  chunk = make_chunk(_regression_update(), mode)
  result = chunk(init_train_state(jnp.zeros(3), OPTIMIZER),
                 (x, y, jnp.int32(5)), 8)
  assert int(result.first_nonfinite_step) == 5
  assert int(result.nonfinite_bits) == 1  # bit 0: "loss"; grad_norm finite


def test_dispatch_mode_stops_between_steps_when_asked(problem):
  x, y = problem
  chunk = make_chunk(_regression_update(), "dispatch")
  calls = []
  stop = lambda: calls.append(1) or len(calls) > 3
  result = chunk(init_train_state(jnp.zeros(3), OPTIMIZER),
                 (x, y, jnp.int32(-1)), 50, stop)
  assert int(result.num_steps) == 3 and int(result.state.step) == 3


def test_precompile_runs_nothing_and_donates_nothing(problem):
  x, y = problem
  for mode in ("device_loop", "dispatch"):
    chunk = make_chunk(_regression_update(), mode)
    state = init_train_state(jnp.zeros(3), OPTIMIZER)
    chunk.precompile(state, (x, y, jnp.int32(-1)))
    assert int(state.step) == 0 and np.all(np.asarray(state.params) == 0)


def test_auto_mode_picks_dispatch_on_cpu_and_the_loop_elsewhere():
  assert resolve_chunk_mode("auto", "cpu") == "dispatch"
  assert resolve_chunk_mode("auto", "gpu") == "device_loop"
  assert resolve_chunk_mode("auto", "tpu") == "device_loop"
  with pytest.raises(ValueError, match="train.chunk_mode"):
    resolve_chunk_mode("turbo")
