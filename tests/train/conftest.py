"""Fixtures of the training-engine tests: tiny images for the VAE update, and
a least-squares problem any chunk or runner test can train."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from latent_jax.train.chunk import TrainState, Update


@pytest.fixture(scope="session")
def tiny_images():
  """40 uniform-noise 8x8 grey images: a dataset a training chunk can draw
  batches of 16 from."""
  return jax.random.uniform(jax.random.key(1), (40, 8, 8, 1))


@pytest.fixture(scope="session")
def regression():
  """(x, y): 32 rows of 3 standard-normal features, y = x @ (1, -2, 0.5)."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal((32, 3)).astype(np.float32)
  y = (x @ np.array([1.0, -2.0, 0.5], np.float32)).astype(np.float32)
  return jnp.asarray(x), jnp.asarray(y)


@pytest.fixture(scope="session")
def regression_optimizer():
  """The optimizer `regression_update` steps with: Adam, learning rate 0.1."""
  return optax.adam(0.1)


@pytest.fixture(scope="session")
def regression_update(regression_optimizer):
  """`regression_update(with_aux=False)`: the chunk Update of least squares
  on inputs (x, y, bad_step), whose loss is NaN at step `bad_step`; with_aux
  adds a carry counting the chunk's steps (metric "chunk_step")."""

  def make(with_aux=False):

    def step(state, aux, inputs):
      x, y, bad_step = inputs
      loss_fn = lambda w: jnp.mean((x @ w - y) ** 2)
      loss, grads = jax.value_and_grad(loss_fn)(state.params)
      loss = jnp.where(state.step == bad_step, jnp.nan, loss)
      updates, opt_state = regression_optimizer.update(grads,
                                                       state.opt_state)
      params = optax.apply_updates(state.params, updates)
      metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
      if with_aux:
        aux = aux + 1
        metrics["chunk_step"] = aux.astype(jnp.float32)
      return TrainState(params, opt_state, state.step + 1), aux, metrics

    begin = (lambda state, inputs: jnp.int32(0)) if with_aux else None
    return Update(step=step, begin=begin, watch=("loss", "grad_norm"))

  return make
