"""The training phases' losses: the global correlation term, the
reconstruction gradient, input noise, the negatives of both modes; a
non-finite term stops the engine naming it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from flax import nnx

from latent_jax import losses
from latent_jax.models.embedding import build_embedder
from latent_jax.train import runner
from latent_jax.train.chunk import init_train_state, make_chunk
from latent_jax.umap import graph as graph_lib
from latent_jax.umap import plan
from latent_jax.umap.sampling import make_edge_table, noise_bank
from latent_jax.umap.phases import (PhaseInputs, TrainingData,
                                    UMAPLossSettings, global_correlation_loss,
                                    in_batch_negatives, make_phase_losses,
                                    make_phase_updates, phase_terms,
                                    shifted_negatives)


@pytest.fixture(scope="module")
def digits_graph(digits):
  """The first 200 digits (on device) and their 10-NN graph's edge table."""
  indices, distances = graph_lib.nearest_neighbors(digits[0][:200], 10)
  edges = graph_lib.graph_edges(
      graph_lib.fuzzy_simplicial_set(indices, distances))
  table = make_edge_table(edges.head, edges.tail, edges.weight)
  return jnp.asarray(digits[0][:200]), table


def test_global_correlation_loss_is_negative_pearson():
  rng = np.random.default_rng(1)
  inputs = rng.normal(size=(64, 5)).astype(np.float32)
  embedding = rng.normal(size=(64, 2)).astype(np.float32)
  key = jax.random.key(3)
  ours = float(global_correlation_loss(jnp.asarray(inputs),
                                       jnp.asarray(embedding), key))
  partner = np.asarray(jax.random.permutation(key, 64))
  standard = lambda v: (v - v.mean()) / v.std()
  dx = np.linalg.norm(standard(inputs) - standard(inputs)[partner], axis=1)
  dz = np.linalg.norm(standard(embedding) - standard(embedding)[partner],
                      axis=1)
  assert ours == pytest.approx(-scipy.stats.pearsonr(dx, dz)[0], abs=1e-4)


@pytest.mark.parametrize("autoencoder_loss", [False, True])
def test_reconstruction_gradient_reaches_encoder_only_if_asked(
    digits_graph, autoencoder_loss):
  data, table = digits_graph
  model = build_embedder("umap_mlp", (64,), 2, with_decoder=True,
                         rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)

  def encoder_grads(weight):
    settings = UMAPLossSettings(1.58, 0.9, reconstruction_weight=weight,
                                reconstruction_likelihood="bernoulli",
                                autoencoder_loss=autoencoder_loss)
    loss = make_phase_losses(graphdef, settings, 64, 64)["umap"]
    grads = jax.grad(lambda p: loss(p, TrainingData(data, data), table,
                                    None, jax.random.key(0), 0)[0])(params)
    return grads["encoder"]

  differences = jax.tree.leaves(jax.tree.map(
      lambda x, y: jnp.abs(x - y).max(), encoder_grads(0.0),
      encoder_grads(1.0)))
  assert (max(differences) > 1e-6) == autoencoder_loss


def test_input_noise_is_off_at_zero_std_and_on_otherwise(digits_graph):
  data, table = digits_graph
  graphdef, params = nnx.split(build_embedder(
      "umap_mlp", (64,), 2, with_decoder=False, rngs=nnx.Rngs(0)))
  targets = jnp.asarray(np.random.default_rng(0).normal(size=(200, 2)),
                        jnp.float32)

  def phase_losses(noise, std):
    settings = UMAPLossSettings(1.58, 0.9, input_noise=noise)
    phases = make_phase_losses(graphdef, settings, 64, 64)
    bank = noise_bank(256, (64,), std, np.random.default_rng(0))
    training = TrainingData(data, data, jnp.asarray(bank))
    return [float(phases[phase](params, training, table, targets,
                                jax.random.key(0), 0)[0])
            for phase in ("init", "umap")]

  clean = phase_losses(False, 0.0)
  assert phase_losses(True, 0.0) == pytest.approx(clean, rel=1e-6)
  noisy = phase_losses(True, 0.3)
  assert all(abs(n - c) > 1e-3 * abs(c) for n, c in zip(noisy, clean))


def test_shifted_negatives_are_uniform_over_the_other_points():
  points = jnp.arange(14, dtype=jnp.float32).reshape(7, 2)
  bits = jax.random.bits(jax.random.key(0), (6000,), jnp.uint32)
  rows = np.asarray(shifted_negatives(points, bits))  # [6000, 7, 2]
  # Row m: the points cyclically shifted by s_m; point i meets i + s_m.
  shift = (rows[:, 0, 0] / 2).astype(int)
  for m in (0, 1, 2):
    np.testing.assert_array_equal(rows[m], np.roll(points, -shift[m], 0))
  # s_m uniform in [1, 6]: never the point itself.
  counts = np.bincount(shift, minlength=7)
  assert counts[0] == 0
  expected = 6000 / 6
  assert np.all(np.abs(counts[1:] - expected) < 4 * np.sqrt(expected))


def test_in_batch_negatives_are_other_edges_ends_weighted_to_uniform():
  rng = np.random.default_rng(0)
  num_points, num_edges, draws = 6, 50, 400
  share = np.array([0.05, 0.1, 0.15, 0.2, 0.2, 0.3], np.float32)
  ends = rng.choice(num_points, 2 * num_edges, p=share).astype(np.int32)
  # Each end's "embedding" is its slot, so a negative names where it came
  # from.
  slots = jnp.arange(2 * num_edges, dtype=jnp.float32)[:, None]
  bits = jax.random.bits(jax.random.key(0), (num_edges, draws), jnp.uint32)
  negatives, weight = in_batch_negatives(slots, jnp.asarray(ends),
                                         jnp.asarray(share), bits)
  picked = np.asarray(negatives[..., 0]).astype(int)  # [B, M]
  own = np.arange(num_edges)[:, None]
  assert not np.any((picked == own) | (picked == own + num_edges))
  # Uniform over the 2 (B - 1) other ends (chi-square).
  others = np.stack([np.delete(np.arange(2 * num_edges), [b, b + num_edges])
                     for b in range(num_edges)])
  rank = (picked[..., None] > others[:, None, :2 * num_edges - 2]).sum(-1)
  counts = np.bincount(rank.ravel(), minlength=2 * num_edges - 2)
  assert scipy.stats.chisquare(counts).pvalue > 1e-3
  np.testing.assert_allclose(weight, 1 / (num_points * share[ends[picked]]),
                             rtol=1e-6)
  # Ends drawn by share, weighted by 1 / (N share): a value per point
  # averages to its plain mean over the points, as uniform negatives would.
  values = rng.normal(size=num_points)
  many = rng.choice(num_points, 200_000, p=share)
  estimate = np.mean(values[many] / (num_points * share[many]))
  assert abs(estimate - values.mean()) < 0.02


def test_minibatch_loss_is_the_uniform_negative_losss_expectation(
    digits, digits_graph):
  # Over 300 keys, the minibatch loss (edges by weight, in-batch negatives)
  # averages to its closed-form expectation: every edge by its share, each
  # head repelled from all N points (itself included) with equal weight.
  # The digits graph's weights, scaled symmetrically by c_i c_j (c in
  # [0.1, 3]): points' shares differ 10-fold, so unweighted in-batch
  # negatives would over-repel from the heavy ones.
  data, _ = digits_graph
  graphdef, params = nnx.split(build_embedder(
      "umap_mlp", (64,), 2, with_decoder=False, rngs=nnx.Rngs(0)))
  # The output layer scaled up: an embedding spread as a trained one is,
  # over which the repulsion varies.
  params = jax.tree.map(lambda v: 30.0 * v if v.shape[-1] == 2 else v,
                        params)
  a, b, rate = 1.58, 0.9, 5
  z = np.asarray(nnx.merge(graphdef, params).embed(data), np.float64)
  indices, distances = graph_lib.nearest_neighbors(digits[0][:200], 10)
  edges = graph_lib.graph_edges(
      graph_lib.fuzzy_simplicial_set(indices, distances))  # as the fixture's
  head, tail = edges.head, edges.tail
  scale = np.random.default_rng(3).uniform(0.1, 3.0, len(data))
  weight = edges.weight * scale[head] * scale[tail]
  table = make_edge_table(head, tail, weight)
  share = weight / weight.sum()
  loss = make_phase_losses(graphdef, UMAPLossSettings(a, b),
                           64, 64)["umap"]
  keys = jax.random.split(jax.random.key(2), 300)
  sampled = np.asarray(jax.jit(jax.vmap(lambda k: loss(
      params, TrainingData(data, data), table, None, k, 0)[0]))(keys))
  log_odds = lambda sq: np.log(a) + b * np.log(
      sq + losses.UMAP_DISTANCE_EPSILON)
  softplus = lambda t: np.logaddexp(t, 0.0)
  attraction = softplus(log_odds(np.sum((z[head] - z[tail]) ** 2, -1)))
  all_pairs = np.sum((z[:, None] - z[None]) ** 2, -1)
  repulsion = softplus(-log_odds(all_pairs)).mean(1)  # [N]: over all j
  head_share = np.bincount(head, share, minlength=len(z))
  expected = (np.sum(share * attraction)
              + rate * np.sum(head_share * repulsion))
  error = sampled.std() / np.sqrt(len(sampled))
  assert abs(sampled.mean() - expected) < 4 * error, (sampled.mean(),
                                                      expected, error)


def test_negative_draws_change_the_variance_not_the_expectation(
    digits_graph):
  # Minibatch steps over 40 keys: 5 and 40 draws standing for 5 negatives
  # agree in the mean (to its standard error) and 40 draws scatter less.
  data, table = digits_graph
  graphdef, params = nnx.split(build_embedder(
      "umap_mlp", (64,), 2, with_decoder=False, rngs=nnx.Rngs(0)))

  def losses_over_keys(draws):
    settings = UMAPLossSettings(1.58, 0.9, negative_draws=draws)
    loss = make_phase_losses(graphdef, settings, 64, 64)["umap"]
    keys = jax.random.split(jax.random.key(1), 40)
    return np.asarray(jax.jit(jax.vmap(lambda k: loss(
        params, TrainingData(data, data), table, None, k, 0)[0]))(keys))

  few, many = losses_over_keys(5), losses_over_keys(40)
  error = np.sqrt((few.var() + many.var()) / 40)
  assert abs(few.mean() - many.mean()) < 3 * error
  assert many.std() < few.std()


def test_augmentation_falls_to_final_augmentation_at_the_last_step(
    digits_graph):
  # final_augmentation=0: at the last step the augmented loss is the plain
  # one (the augmentation's random bits come after the edges' and
  # negatives', so those match); at step 0 it is not.
  data, table = digits_graph
  table = table._replace(neighbors=jnp.asarray(
      np.random.default_rng(0).integers(0, 200, (200, 5)), jnp.int32))
  graphdef, params = nnx.split(build_embedder(
      "umap_mlp", (64,), 2, with_decoder=False, rngs=nnx.Rngs(0)))
  bank = jnp.asarray(noise_bank(256, (64,), 0.3, np.random.default_rng(0)))
  training = TrainingData(data, data, bank)

  def loss(step, **augmentation):
    settings = UMAPLossSettings(1.58, 0.9, total_steps=10, full_batch=True,
                                **augmentation)
    return float(make_phase_losses(graphdef, settings, 64, 64)["umap"](
        params, training, table, None, jax.random.key(0), step)[0])

  augmented = dict(neighbor_mixing=0.5, input_noise=True,
                   final_augmentation=0.0)
  plain = loss(0)
  assert loss(10, **augmented) == pytest.approx(plain, rel=1e-6)
  assert abs(loss(0, **augmented) - plain) > 1e-3 * abs(plain)


def test_each_phase_watches_every_term_it_reports(digits_graph):
  data, table = digits_graph
  graphdef, params = nnx.split(build_embedder(
      "umap_mlp", (64,), 2, with_decoder=True, rngs=nnx.Rngs(0)))
  settings = UMAPLossSettings(1.58, 0.9, reconstruction_weight=1.0,
                              global_correlation_loss_weight=0.5)
  optimizer = plan.make_optimizer(
      {"weight_decay": 0.0, "grad_clip_norm": 4.0}, 1e-2, 10)
  updates = make_phase_updates(graphdef, optimizer, settings, batch_size=64,
                               init_batch_size=64)
  state = init_train_state(params, optimizer)
  inputs = PhaseInputs(TrainingData(data, data), table,
                       jnp.zeros((200, 2)), jax.random.key(0))
  for phase, update in updates.items():
    _, _, metrics = jax.eval_shape(update.step, state, (), inputs)
    assert set(update.watch) == set(metrics), phase
    assert update.watch[:-2] == phase_terms(settings)[phase]
  assert phase_terms(UMAPLossSettings(1.58, 0.9))["umap"] == ("umap",)


def test_a_non_finite_term_stops_training_naming_it(digits_graph):
  # NaN decoder targets: the reconstruction term (and so the total and the
  # gradient) goes non-finite, the cross-entropy stays finite.
  data, table = digits_graph
  graphdef, params = nnx.split(build_embedder(
      "umap_mlp", (64,), 2, with_decoder=True, rngs=nnx.Rngs(0)))
  settings = UMAPLossSettings(1.58, 0.9, reconstruction_weight=1.0,
                              full_batch=True)
  optimizer = plan.make_optimizer(
      {"weight_decay": 0.0, "grad_clip_norm": 4.0}, 1e-2, 3)
  update = make_phase_updates(graphdef, optimizer, settings, batch_size=16,
                              init_batch_size=16)["umap"]
  targets = jnp.full_like(data, jnp.nan)
  inputs = PhaseInputs(TrainingData(data, targets), table,
                       jnp.zeros((200, 2)), jax.random.key(0))
  phase = runner.Phase("umap", 3, make_chunk(update, "device_loop"), inputs)
  with pytest.raises(runner.NonFiniteLossError) as error:
    runner.train(init_train_state(params, optimizer), [phase],
                 runner.Cadence(steps_per_call=3, log_every=0),
                 stop_on_sigterm=False)
  assert "Non-finite reconstruction, loss, grad_norm at step 0" in str(
      error.value)
