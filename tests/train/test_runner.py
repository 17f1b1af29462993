"""The one training loop: cadence, chunk boundaries, NaN stop, SIGTERM."""

import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from latent_jax.train import runner
from latent_jax.train.checkpointing import Checkpointer
from latent_jax.train.chunk import (TrainState, Update, init_train_state,
                                    make_chunk)


def test_is_time_at_multiples_and_at_the_end():
  assert [s for s in range(1, 11) if runner.is_time(s, 4, 10)] == [4, 8, 10]
  assert [s for s in range(1, 11) if runner.is_time(s, 0, 10)] == [10]
  assert runner.next_boundary(5, (4, 0, 3), 10) == 6
  assert runner.next_boundary(9, (4, 3), 10) == 10


@pytest.fixture
def phases(regression, regression_update):
  """`phases(mode="dispatch", bad_step=-1, total=10, split=None)`: the
  least-squares problem as one phase "train" of `total` steps, or as "first"
  (to step `split`) and "second" (to `total`)."""
  x, y = regression

  def make(mode="dispatch", bad_step=-1, total=10, split=None):
    chunk = make_chunk(regression_update(), mode)
    inputs = (x, y, jnp.int32(bad_step))
    if split is None:
      return [runner.Phase("train", total, chunk, inputs)]
    return [runner.Phase("first", split, chunk, inputs),
            runner.Phase("second", total, chunk, inputs)]

  return make


@pytest.fixture
def initial_state(regression_optimizer):
  """`initial_state()`: zero weights, a fresh optimizer state, step 0."""
  return lambda: init_train_state(jnp.zeros(3), regression_optimizer)


@pytest.mark.parametrize("mode", ["device_loop", "dispatch"])
def test_chunks_end_at_every_boundary_and_logs_average_their_steps(
    phases, initial_state, mode):
  chunks, logs = [], []
  hooks = runner.Hooks(
      log=lambda step, phase, means, rate: logs.append((step, phase,
                                                         means["loss"])),
      after_chunk=lambda step, phase, means, taken, sec: chunks.append(
          (step, phase, taken, float(means["loss"]))))
  state = runner.train(
      initial_state(), phases(mode, split=3),
      runner.Cadence(steps_per_call=4, log_every=5), hooks=hooks,
      stop_on_sigterm=False)
  assert int(state.step) == 10
  # boundaries: phase end 3, log 5, steps_per_call 4 from 5 -> 9, end 10
  assert [(s, p, n) for s, p, n, _ in chunks] == [
      (3, "first", 3), (5, "second", 2), (9, "second", 4), (10, "second", 1)]
  assert [(s, p) for s, p, _ in logs] == [(3, "first"), (5, "second"),
                                          (10, "second")]
  # A log averages the chunks since the last one, weighted by steps.
  (_, _, _, l2), (_, _, _, l3), (_, _, _, l4) = chunks[1:]
  assert logs[2][2] == pytest.approx((4 * l3 + l4) / 5)
  assert logs[1][2] == pytest.approx(l2)


def test_a_nonfinite_step_stops_and_keeps_the_last_good_checkpoint(
    phases, initial_state, tmp_path):
  checkpointer = Checkpointer(str(tmp_path))
  with pytest.raises(runner.NonFiniteLossError,
                     match=r"Non-finite loss at step 5; .*step 4\).* Lower"):
    runner.train(initial_state(), phases(bad_step=5),
                 runner.Cadence(steps_per_call=10, log_every=2,
                                checkpoint_every=2),
                 checkpointer=checkpointer, stop_on_sigterm=False,
                 advice="Lower it.")
  # Chunks end at checkpoints: steps 4-5 ran in the poisoned chunk, which is
  # not saved.
  assert checkpointer.latest_step() == 4
  restored, meta = checkpointer.restore_latest(initial_state())
  assert np.all(np.isfinite(np.asarray(restored.params)))
  checkpointer.close()


def test_nonfinite_parameters_are_never_saved(regression, regression_optimizer,
                                              initial_state, tmp_path):
  """Step 4 writes NaN into the weights while its loss (taken before the
  update) is finite: the step-5 save finds them and stops; step 0's
  checkpoint stays the last one."""
  x, y = regression

  def step(state, aux, inputs):
    loss, grads = jax.value_and_grad(
        lambda w: jnp.mean((x @ w - y) ** 2))(state.params)
    updates, opt_state = regression_optimizer.update(grads, state.opt_state)
    params = optax.apply_updates(state.params, updates)
    params = jnp.where(state.step == 4, jnp.nan, params)
    return TrainState(params, opt_state, state.step + 1), aux, {"loss": loss}

  chunk = make_chunk(Update(step=step), "dispatch")
  checkpointer = Checkpointer(str(tmp_path))
  checkpointer.save(0, initial_state(), {"step": 0})
  with pytest.raises(runner.NonFiniteLossError,
                     match=r"Non-finite parameters after step 5;.*step 0\)"):
    runner.train(initial_state(), [runner.Phase("train", 10, chunk, None)],
                 runner.Cadence(steps_per_call=10, log_every=100,
                                checkpoint_every=5),
                 checkpointer=checkpointer, stop_on_sigterm=False)
  assert checkpointer.latest_step() == 0
  checkpointer.close()
  bad = init_train_state(jnp.array([1.0, jnp.inf, 0.0]), regression_optimizer)
  assert list(np.asarray(runner.finite_parts(bad))) == [False, True]


def test_sigterm_checkpoints_then_raises_preempted(
    phases, initial_state, tmp_path):
  checkpointer = Checkpointer(str(tmp_path))

  def send_sigterm(step, *_):
    if step == 3:
      os.kill(os.getpid(), signal.SIGTERM)

  with pytest.raises(runner.Preempted, match="step 3"):
    runner.train(initial_state(), phases(),
                 runner.Cadence(steps_per_call=3, log_every=100,
                                checkpoint_every=100),
                 hooks=runner.Hooks(after_chunk=send_sigterm,
                                    checkpoint_meta=lambda s: {"why": "s"}),
                 checkpointer=checkpointer)
  assert checkpointer.latest_step() == 3
  _, meta = checkpointer.restore_latest(initial_state())
  assert meta == {"step": 3, "why": "s"}
  checkpointer.close()
  # The previous handler is back afterwards.
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_resuming_from_a_checkpoint_equals_an_uninterrupted_run(
    phases, initial_state, tmp_path):
  cadence = runner.Cadence(steps_per_call=3, log_every=100,
                           checkpoint_every=4)
  straight = runner.train(initial_state(), phases(), cadence,
                          stop_on_sigterm=False)
  checkpointer = Checkpointer(str(tmp_path))
  runner.train(initial_state(), phases(total=4), cadence,
               checkpointer=checkpointer, stop_on_sigterm=False)
  restored, _ = checkpointer.restore_latest(initial_state())
  checkpointer.close()
  resumed = runner.train(restored, phases(), cadence,
                         stop_on_sigterm=False)
  np.testing.assert_allclose(np.asarray(resumed.params),
                             np.asarray(straight.params), rtol=1e-6)
