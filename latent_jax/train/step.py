"""The VAE/AE update: one optimiser step of every ensemble member.

A plain `Update` for the engine (train/chunk.py). Every run trains an
ensemble (train/ensemble.py): parameters and optimiser state carry a leading
member axis, the per-member step is mapped over it with `vmap_members`, and
all members share each step's batch; KL weights, posterior keys and
(optionally) latent masks are [M] arrays, traced, so any KL weights or
member latent sizes reuse one compiled program.

The training images live on the device; each step takes its batch from a
per-epoch permutation inside the program, so nothing is copied from the host
per step. Randomness depends only on (key, step): the batch of step s comes
from the permutation of epoch s // steps_per_epoch and its posterior noise
from `fold_in(model_key, s)`, so a run resumed at step s replays exactly the
steps an uninterrupted run takes.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from latent_jax import losses
from latent_jax.train.chunk import TrainState, Update, make_chunk
from latent_jax.train.ensemble import vmap_members

# What the VAE step watches for NaN/Inf, in bit order.
WATCHED = ("recon", "kl", "grad_norm")
LOGGED = ("loss", "recon", "kl", "neg_elbo", "grad_norm")
# train.compute_dtype: the forward/backward pass's dtype. Parameters,
# optimiser state, gradients, losses and KL reductions stay float32.
COMPUTE_DTYPES = ("float32", "bfloat16")


class VAEInputs(NamedTuple):
  """What every step reads (on the device, never donated)."""
  images: jax.Array      # [N, H, W, C] training images
  data_key: jax.Array    # key of the per-epoch permutations (shared)
  model_keys: jax.Array  # [M] keys of the posterior noise
  kl_weights: jax.Array  # [M] float32
  latent_masks: jax.Array | None = None  # [M, D]; None: every dim trains


def init_ensemble_state(member_params: Any, optimizer:
                        optax.GradientTransformation) -> TrainState:
  """TrainState of stacked member parameters ([M, ...] leaves)."""
  return TrainState(member_params, jax.vmap(optimizer.init)(member_params),
                    jnp.zeros((), jnp.int32))


def cast_floating(tree: Any, dtype: Any) -> Any:
  """`tree` with its floating leaves as `dtype` (integer leaves unchanged).

  The compute copy of float32 parameters: `astype`'s gradient casts back,
  so gradients arrive in the parameters' own float32.
  """
  return jax.tree.map(
      lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating)
      else x, tree)


def make_vae_update(graphdef: nnx.GraphDef,
                    optimizer: optax.GradientTransformation, *,
                    likelihood: str, gaussian_scale: float,
                    kl_warmup_steps: int, batch_size: int, num_train: int,
                    conv_batching: str = "auto",
                    batch_sharding: Any = None,
                    compute_dtype: str = "float32") -> Update:
  """The ensemble step over `VAEInputs`.

  Args:
    conv_batching: how convolutions map over members (ensemble.py).
    batch_sharding: optional `jax.sharding.Sharding` of each step's
      [batch_size, H, W, C] batch (data parallelism over a mesh).
    compute_dtype: one of `COMPUTE_DTYPES`; "bfloat16" runs the model on
      bfloat16 copies of the parameters and images (mixed precision: what
      accelerators' matrix units run fastest), with float32 parameters,
      optimiser state and loss reductions.

  Metrics ([M] per step): loss, recon, kl, neg_elbo (recon + kl,
  unweighted), grad_norm.
  """
  steps_per_epoch = num_train // batch_size
  if steps_per_epoch < 1:
    raise ValueError(f"train.batch_size={batch_size} is larger than the "
                     f"training set ({num_train} images): lower it.")
  if compute_dtype not in COMPUTE_DTYPES:
    raise ValueError(f"train.compute_dtype={compute_dtype!r} is not one of "
                     f"{COMPUTE_DTYPES}: use float32 or bfloat16.")
  dtype = None if compute_dtype == "float32" else jnp.dtype(compute_dtype)

  def loss_fn(params, images, key, kl_weight, latent_mask=None):
    if dtype is not None:
      params = cast_floating(params, dtype)
    model = nnx.merge(graphdef, params)
    terms = model.loss_terms(images, key, likelihood, gaussian_scale,
                             compute_dtype=dtype, latent_mask=latent_mask)
    loss = jnp.mean(losses.negative_elbo(terms["recon"], terms["kl"],
                                         kl_weight))
    return loss, {"recon": jnp.mean(terms["recon"]),
                  "kl": jnp.mean(terms["kl"])}

  def epoch_permutation(data_key, epoch):
    return jax.random.permutation(jax.random.fold_in(data_key, epoch),
                                  num_train)

  def member_update(params, opt_state, step, batch, model_key, kl_weight,
                    latent_mask=None):
    weight = kl_weight * losses.kl_warmup_factor(step, kl_warmup_steps)
    (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, batch, jax.random.fold_in(model_key, step), weight,
        latent_mask)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, {"loss": loss, "recon": terms["recon"],
                               "kl": terms["kl"],
                               "neg_elbo": terms["recon"] + terms["kl"],
                               "grad_norm": optax.tree.norm(grads)}

  update_members = vmap_members(member_update, (0, 0, None, None, 0, 0),
                                conv_batching)
  update_masked = vmap_members(member_update, (0, 0, None, None, 0, 0, 0),
                               conv_batching)

  def begin(state: TrainState, inputs: VAEInputs):
    return epoch_permutation(inputs.data_key, state.step // steps_per_epoch)

  def step(state: TrainState, permutation, inputs: VAEInputs):
    epoch, position = jnp.divmod(state.step, steps_per_epoch)
    permutation = jax.lax.cond(
        position == 0, lambda: epoch_permutation(inputs.data_key, epoch),
        lambda: permutation)
    batch_indices = jax.lax.dynamic_slice_in_dim(
        permutation, position * batch_size, batch_size)
    batch = jnp.take(inputs.images, batch_indices, axis=0)
    if batch_sharding is not None:
      batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
    masked = () if inputs.latent_masks is None else (inputs.latent_masks,)
    params, opt_state, metrics = (update_masked if masked else update_members)(
        state.params, state.opt_state, state.step, batch, inputs.model_keys,
        inputs.kl_weights, *masked)
    return TrainState(params, opt_state, state.step + 1), permutation, metrics

  return Update(step=step, begin=begin, watch=WATCHED)


def make_train_chunk(graphdef: nnx.GraphDef, optimizer:
                     optax.GradientTransformation, *, chunk_mode: str = "auto",
                     **update_options) -> Callable:
  """`train_chunk(state, images, data_key, model_key, kl_weight, n)`.

  The VAE update run by the engine, for callers that hold one model or an
  ensemble outside a run (tests, benchmarks). `update_options` are those of
  `make_vae_update`. `state` is donated; it may be stacked ([M] keys and KL
  weights) or one unstacked model (one key, a scalar KL weight).

  Returns (state, metrics): the chunk means of `LOGGED` ([M], or scalars
  for an unstacked state), `num_steps`, `first_nonfinite_step` (-1: none)
  and `nonfinite_bits` (bit i: `WATCHED[i]`).
  """
  chunk = make_chunk(make_vae_update(graphdef, optimizer, **update_options),
                     chunk_mode)

  def run(state, images, data_key, model_key, kl_weight, num_steps,
          should_stop=None):
    result = chunk(state, VAEInputs(images, data_key, model_key, kl_weight),
                   num_steps, should_stop)
    return result.state, {**result.means, "num_steps": result.num_steps,
                          "first_nonfinite_step": result.first_nonfinite_step,
                          "nonfinite_bits": result.nonfinite_bits}

  def train_chunk(state, images, data_key, model_key, kl_weight, num_steps,
                  should_stop=None):
    if jnp.ndim(kl_weight) > 0:
      return run(state, images, data_key, model_key, kl_weight, num_steps,
                 should_stop)
    add_axis = lambda tree: jax.tree.map(lambda x: x[None], tree)
    drop_axis = lambda tree: jax.tree.map(lambda x: x[0], tree)
    state = TrainState(add_axis(state.params), add_axis(state.opt_state),
                       state.step)
    state, metrics = run(state, images, data_key, model_key[None],
                         jnp.reshape(kl_weight, (1,)), num_steps, should_stop)
    state = TrainState(drop_axis(state.params), drop_axis(state.opt_state),
                       state.step)
    return state, {name: value if name == "num_steps" else value[0]
                   for name, value in metrics.items()}
  return train_chunk

