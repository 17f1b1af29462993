"""The device sampler: edges drawn by weight, integers, uniforms and noise
from random bits against exact arithmetic, neighbour mixing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from latent_jax.umap import graph as graph_lib
from latent_jax.umap.sampling import (draw_bits, edge_table_shapes,
                                      edges_from_bits, index_from_bits,
                                      make_edge_table, max_edges, mix,
                                      mixing_from_bits, noise_bank,
                                      noise_from_bits, uniform_from_bits)


def test_edge_sampler_frequencies_match_weights(digits):
  indices, distances = graph_lib.nearest_neighbors(digits[0][:300], 10)
  edges = graph_lib.graph_edges(
      graph_lib.fuzzy_simplicial_set(indices, distances))
  capacity = max_edges(300, 10)
  assert len(edges.weight) <= capacity
  # Several blocks, and whole blocks of zero-weight padding after them.
  table = make_edge_table(edges.head, edges.tail, edges.weight,
                          block_size=256, capacity=capacity, num_points=300)
  assert jax.tree.map(lambda a: (a.shape, a.dtype), table) == jax.tree.map(
      lambda a: (a.shape, a.dtype),
      edge_table_shapes(capacity, None, 256, num_points=300))
  # Full-batch steps' weights: each unordered pair once with the share of
  # both its directions (the fuzzy graph is symmetric: half the edges), and
  # each point's share as a head.
  share = edges.weight / edges.weight.sum()
  expected = {}
  for h, t, w in zip(edges.head, edges.tail, share):
    key = (min(h, t), max(h, t))
    expected[key] = expected.get(key, 0.0) + w
  pair_share = np.asarray(table.pair_share)
  kept = pair_share > 0
  assert kept.sum() == len(expected) == len(share) // 2
  assert len(pair_share) == capacity // 2
  got = dict(zip(zip(np.asarray(table.pair_head)[kept].tolist(),
                     np.asarray(table.pair_tail)[kept].tolist()),
                 pair_share[kept]))
  assert set(got) == set(expected)
  np.testing.assert_allclose([got[k] for k in expected],
                             list(expected.values()), rtol=1e-5)
  np.testing.assert_allclose(
      np.asarray(table.head_share),
      np.bincount(edges.head, share, minlength=300), rtol=1e-5, atol=1e-9)
  assert table.head.shape[0] - len(edges.weight) > 256
  heads, tails = jax.jit(lambda k: edges_from_bits(
      table, draw_bits(k, {"edges": (2, 400_000)})["edges"]))(
      jax.random.key(0))
  # Identify edges by (head, tail); graph edges are unique pairs.
  code = np.asarray(heads, np.int64) * 300 + np.asarray(tails)
  edge_code = edges.head.astype(np.int64) * 300 + edges.tail
  assert np.isin(code, edge_code).all()
  lookup = {c: i for i, c in enumerate(edge_code)}
  counts = np.bincount([lookup[c] for c in code], minlength=len(edge_code))
  weights = edges.weight.astype(np.float64)
  expected = weights / weights.sum() * len(code)
  assert scipy.stats.chisquare(counts, expected).pvalue > 1e-3


def test_values_from_bits_match_exact_integer_arithmetic():
  bits = draw_bits(jax.random.key(0), {"a": (3, 50_000), "b": (7,)})
  assert bits["a"].shape == (3, 50_000) and bits["b"].shape == (7,)
  assert bits["a"].dtype == jnp.uint32
  flat = np.asarray(bits["a"]).reshape(-1)
  wide = flat.astype(np.uint64)
  for n in (1, 2, 15, 5000, 65_537, 1_000_003, 2**31 - 1):
    ours = np.asarray(jax.jit(index_from_bits, static_argnums=1)(
        bits["a"], n)).reshape(-1)
    # floor(bits * n / 2^32) in exact 64-bit integers.
    np.testing.assert_array_equal(ours, (wide * np.uint64(n)) >> np.uint64(32))
    assert ours.min() >= 0 and ours.max() < n
  # Small n: every value equally often (chi-square).
  assert scipy.stats.chisquare(np.bincount(
      np.asarray(index_from_bits(bits["a"], 15)).reshape(-1))).pvalue > 1e-3
  uniform = np.asarray(uniform_from_bits(bits["a"])).reshape(-1)
  np.testing.assert_array_equal(uniform, (flat >> 8) / 2.0**24)
  assert 0 <= uniform.min() and uniform.max() < 1
  assert scipy.stats.kstest(uniform, "uniform").pvalue > 1e-3
  with pytest.raises(ValueError, match="n must be"):
    index_from_bits(bits["a"], 0)


def test_noise_rows_and_signs_from_bits_are_uniform_and_independent():
  bank = noise_bank(64, (3,), 0.25, np.random.default_rng(0))
  assert bank.shape == (64, 3) and bank.dtype == np.float32
  assert scipy.stats.kstest(bank.reshape(-1) / 0.25, "norm").pvalue > 1e-3
  # An odd number of words (threefry is padded to pairs inside draw_bits).
  bits = draw_bits(jax.random.key(1), {"noise": (100_001,)})["noise"]
  assert bits.shape == (100_001,)
  ours = np.asarray(jax.jit(noise_from_bits)(jnp.asarray(bank), bits))
  # Reference: row floor(bits * 64 / 2^32) = the top 6 bits; sign bit 0.
  words = np.asarray(bits)
  rows, negative = words >> 26, (words & 1).astype(bool)
  np.testing.assert_array_equal(ours, np.where(negative[:, None], -bank[rows],
                                               bank[rows]))
  # Every (row, sign) pair equally often: rows uniform, signs independent.
  cells = np.bincount(2 * rows + negative, minlength=128)
  assert scipy.stats.chisquare(cells).pvalue > 1e-3


def test_neighbor_mixing_moves_points_both_ways_along_knn_segments(digits):
  data = digits[0][:300]
  indices, _ = graph_lib.nearest_neighbors(data, 10)
  points = jnp.asarray(np.arange(300).repeat(20))
  partner, fraction = jax.jit(lambda k: mixing_from_bits(
      points, jnp.asarray(indices),
      draw_bits(k, {"mixing": (2, len(points))})["mixing"], 0.5))(
          jax.random.key(0))
  partner, fraction = np.asarray(partner), np.asarray(fraction)
  # The partner is one of the point's own neighbours other than itself.
  rows = np.asarray(points)
  assert all(p in indices[r, 1:] for r, p in zip(rows, partner))
  # t ~ U(-0.5, 0.5): two-sided, mean 0, variance 1/12 of the width^2.
  assert fraction.min() >= -0.5 and fraction.max() <= 0.5
  assert scipy.stats.kstest(fraction, scipy.stats.uniform(-0.5, 1.0).cdf
                            ).pvalue > 1e-3
  # Every neighbour column is used, uniformly (chi-square).
  columns = np.array([list(indices[r]).index(p)
                      for r, p in zip(rows, partner)])
  assert scipy.stats.chisquare(np.bincount(columns, minlength=10)[1:]
                               ).pvalue > 1e-3
  # The mixed point is x + t (x_partner - x), for inputs and targets alike.
  mixed = np.asarray(mix(jnp.asarray(data), points, partner, fraction))
  expected = data[rows] + fraction[:, None] * (data[partner] - data[rows])
  np.testing.assert_allclose(mixed, expected, atol=1e-6)
