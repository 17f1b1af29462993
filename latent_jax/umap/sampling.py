"""Sampling edges in proportion to their weights, on the device.

UMAP updates each edge in proportion to its membership weight. Rather than
repeating edges in memory (umap-learn's ParametricUMAP builds a dataset in
which every edge appears weight * epochs times), the edge list is stored once
on the device and each training step draws its batch with `jax.random`.

A single float32 cumulative distribution cannot resolve the individual
probabilities of millions of edges (float32 spacing near 1 is 6e-8, about
the probability of one edge among 20 million), so the table has two levels:
blocks of `BLOCK_SIZE` edges chosen by a block-level CDF, then an edge inside
the block by a CDF normalised within the block. Both are computed in float64
on the host; each level then has at most a few thousand float32 entries per
unit of probability mass it must resolve.

Random numbers: a training step needs several kinds (edge draws, negatives,
mixing partners and fractions, input noise). `draw_bits` makes them all with
one threefry call and `uniform_from_bits` / `index_from_bits` /
`noise_from_bits` turn the bits into values. Each `jax.random.uniform` /
`randint` is its own threefry program, compiled and run separately (and
randint draws twice the bits it returns): one draw per step is cheaper.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

BLOCK_SIZE = 1024


class EdgeTable(NamedTuple):
  """Device arrays for sampling edges; a pytree that can enter jit."""
  head: jax.Array         # int32 [E_padded]
  tail: jax.Array         # int32 [E_padded]
  block_cdf: jax.Array    # float32 [num_blocks]
  within_cdf: jax.Array   # float32 [num_blocks, BLOCK_SIZE]
  # For full-batch steps, which score every edge instead of sampling it:
  # each unordered pair {i, j} once (int32 [P_padded] each; the distance is
  # symmetric, so half the directed edges' work), its share of the total
  # weight of both directions (float32 [P_padded], padding 0), and each
  # point's share as a head (float32 [N]). P_padded is 0 without pairs.
  pair_head: jax.Array
  pair_tail: jax.Array
  pair_share: jax.Array
  head_share: jax.Array
  # int32 [N, k]: each point's k nearest neighbours (self first), for the
  # neighbour-mixing augmentation; None when it is off.
  neighbors: jax.Array | None = None


def max_edges(num_points: int, n_neighbors: int) -> int:
  """An upper bound on the directed edges of the symmetrised kNN graph.

  The union of a kNN graph and its transpose has at most 2 N k nonzeros, so
  tables padded to this size have shapes known before the graph is built
  (the fit compiles its programs meanwhile).
  """
  return 2 * num_points * n_neighbors


def _num_blocks(num_edges: int, block_size: int) -> int:
  return max(-(-num_edges // block_size), 1)


def make_edge_table(head: np.ndarray, tail: np.ndarray, weight: np.ndarray,
                    block_size: int = BLOCK_SIZE,
                    neighbors: np.ndarray | None = None,
                    capacity: int | None = None,
                    num_points: int | None = None,
                    pairs: bool = True) -> EdgeTable:
  """Builds the two-level table for edges (head, tail) with `weight`.

  capacity: pad to room for this many edges (zero weight: never drawn), so
  that the table's shapes are those of `edge_table_shapes(capacity, ...)`;
  the unordered pairs are padded to half of it (`pair_capacity`: a
  symmetric graph's). num_points: N, the points the edges join (None: the
  largest index + 1). pairs: build the full-batch pair list.
  """
  weight = np.asarray(weight, np.float64)
  if weight.ndim != 1 or len(weight) == 0:
    raise ValueError("The graph has no edges to sample: is the data made of "
                     "identical points?")
  if np.any(weight < 0) or not np.all(np.isfinite(weight)):
    raise ValueError("Edge weights must be finite and non-negative.")
  if capacity is not None and capacity < len(weight):
    raise ValueError(f"capacity {capacity} < {len(weight)} edges.")
  num_blocks = _num_blocks(max(len(weight), capacity or 0), block_size)
  pad = num_blocks * block_size - len(weight)
  padded = np.pad(weight, (0, pad)).reshape(num_blocks, block_size)
  block_mass = padded.sum(axis=1)
  # Blocks of padding repeat the last value (1 in float32): never chosen.
  block_cdf = np.cumsum(block_mass) / block_mass.sum()
  within = np.cumsum(padded, axis=1) / np.where(block_mass > 0, block_mass,
                                                1.0)[:, None]
  # Padding carries no mass: its CDF stays at 1 and is never chosen.
  pad_index = lambda a: np.pad(np.asarray(a, np.int32), (0, pad))
  if num_points is None:
    num_points = int(max(np.max(head), np.max(tail))) + 1
  share = weight / weight.sum()
  head_share = np.bincount(np.asarray(head), share, minlength=num_points)
  pair_head, pair_tail, pair_share = _unordered_pairs(
      head, tail, share, num_points,
      pair_capacity(capacity or len(weight)) if pairs else 0)
  # device_put, not jnp.asarray: the latter compiles a program per shape.
  to_device = lambda a, dtype: jax.device_put(np.asarray(a, dtype))
  return EdgeTable(to_device(pad_index(head), np.int32),
                   to_device(pad_index(tail), np.int32),
                   to_device(block_cdf, np.float32),
                   to_device(within, np.float32),
                   to_device(pair_head, np.int32),
                   to_device(pair_tail, np.int32),
                   to_device(pair_share, np.float32),
                   to_device(head_share, np.float32),
                   None if neighbors is None else to_device(neighbors,
                                                            np.int32))


def pair_capacity(capacity: int) -> int:
  """Room for the unordered pairs of `capacity` directed edges of a
  symmetric graph (each pair is two of them)."""
  return -(-capacity // 2)


def _unordered_pairs(head, tail, share, num_points: int, capacity: int):
  """Each unordered pair {i, j} once with the summed share of (i, j) and
  (j, i): (head [capacity], tail [capacity], share [capacity]), padded."""
  if capacity == 0:
    empty = np.zeros(0)
    return empty, empty, empty
  low = np.minimum(head, tail).astype(np.int64)
  code = low * num_points + np.maximum(head, tail)
  codes, inverse = np.unique(code, return_inverse=True)
  if len(codes) > capacity:
    raise ValueError(f"{len(codes)} unordered pairs exceed their capacity "
                     f"{capacity}: is the graph symmetric?")
  pad = lambda a: np.pad(a, (0, capacity - len(codes)))
  return (pad(codes // num_points), pad(codes % num_points),
          pad(np.bincount(inverse, share, minlength=len(codes))))


def edge_table_shapes(capacity: int, neighbors_shape: tuple[int, int] | None,
                      block_size: int = BLOCK_SIZE, *, num_points: int,
                      pairs: bool = True) -> EdgeTable:
  """The `jax.ShapeDtypeStruct`s of `make_edge_table(..., capacity=...,
  num_points=..., pairs=...)`."""
  num_blocks = _num_blocks(capacity, block_size)
  num_pairs = pair_capacity(capacity) if pairs else 0
  spec = jax.ShapeDtypeStruct
  return EdgeTable(
      spec((num_blocks * block_size,), jnp.int32),
      spec((num_blocks * block_size,), jnp.int32),
      spec((num_blocks,), jnp.float32),
      spec((num_blocks, block_size), jnp.float32),
      spec((num_pairs,), jnp.int32),
      spec((num_pairs,), jnp.int32),
      spec((num_pairs,), jnp.float32),
      spec((num_points,), jnp.float32),
      None if neighbors_shape is None else spec(neighbors_shape, jnp.int32))


def _search_blocks(flat_cdf: jax.Array, block: jax.Array, u: jax.Array,
                   block_size: int) -> jax.Array:
  """Per sample, the first index in its block whose CDF value exceeds u.

  A vectorised bisection (log2(block_size) gathers of one value per sample)
  instead of gathering whole [num, block_size] rows.
  """
  def halve(_, bounds):
    lo, hi = bounds
    mid = (lo + hi) // 2
    go_right = jnp.take(flat_cdf, mid) <= u
    return jnp.where(go_right, mid + 1, lo), jnp.where(go_right, hi, mid)

  lo = block * block_size
  # A loop, not unrolled: fewer fused kernels for XLA to compile.
  lo, hi = jax.lax.fori_loop(0, max(block_size - 1, 1).bit_length(), halve,
                             (lo, lo + block_size - 1))
  return jnp.minimum(lo, hi)


def draw_bits(key: jax.Array, shapes: dict[str, tuple[int, ...]]
              ) -> dict[str, jax.Array]:
  """{name: uint32 random bits of that shape}, all from one threefry call."""
  sizes = {name: math.prod(shape) for name, shape in shapes.items()}
  total = sum(sizes.values())
  # An even count: threefry makes words in pairs, and XLA:CPU runs its
  # program several times slower per word for an odd count.
  flat = jax.random.bits(key, (total + total % 2,), jnp.uint32)
  bits, offset = {}, 0
  for name, shape in shapes.items():
    bits[name] = flat[offset:offset + sizes[name]].reshape(shape)
    offset += sizes[name]
  return bits


def uniform_from_bits(bits: jax.Array) -> jax.Array:
  """float32 in [0, 1): the top 24 bits, which float32 holds exactly."""
  return (bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))


def index_from_bits(bits: jax.Array, n: int) -> jax.Array:
  """int32 in [0, n): floor(bits * n / 2^32), off uniform by < n / 2^32.

  The 64-bit product is formed from 16-bit halves (JAX runs in 32 bits by
  default).
  """
  if not 0 < n < 2**31:
    raise ValueError(f"n must be in [1, 2^31), got {n}.")
  bits_high, bits_low = bits >> 16, bits & 0xFFFF
  n_high, n_low = jnp.uint32(n >> 16), jnp.uint32(n & 0xFFFF)
  upper, lower = bits_high * n_low, bits_low * n_high
  middle = ((bits_low * n_low) >> 16) + (upper & 0xFFFF) + (lower & 0xFFFF)
  high = bits_high * n_high + (upper >> 16) + (lower >> 16) + (middle >> 16)
  return high.astype(jnp.int32)


def edges_from_bits(table: EdgeTable, bits: jax.Array
                    ) -> tuple[jax.Array, jax.Array]:
  """(head, tail) of `bits.shape[1]` edges drawn with probability ~ weight.

  bits: uint32 [2, num] (`draw_bits`): row 0 picks the block, row 1 the
  edge inside it.
  """
  block = jnp.searchsorted(table.block_cdf, uniform_from_bits(bits[0]),
                           side="right")
  block = jnp.minimum(block, table.block_cdf.shape[0] - 1)
  edge = _search_blocks(table.within_cdf.reshape(-1), block,
                        uniform_from_bits(bits[1]),
                        table.within_cdf.shape[1])
  return jnp.take(table.head, edge), jnp.take(table.tail, edge)


def mixing_from_bits(indices: jax.Array, neighbors: jax.Array,
                     bits: jax.Array, max_fraction: float
                     ) -> tuple[jax.Array, jax.Array]:
  """(partner [n], fraction [n]) for moving each point along a kNN segment.

  Point i becomes x_i + t (x_j - x_i), j a uniform draw among its k - 1
  nearest neighbours and t ~ U(-max_fraction, max_fraction) (see `mix`):
  towards the neighbour or as far away from it. The encoder then sees the
  neighbourhood around each training point, where held-out points lie, not
  only the point itself; two-sided, so the point stays the mean of its
  augmented copies rather than being pulled towards its neighbours.
  bits: uint32 [2, n].
  """
  column = 1 + index_from_bits(bits[0], neighbors.shape[1] - 1)
  partner = neighbors[indices, column]
  return partner, max_fraction * (2.0 * uniform_from_bits(bits[1]) - 1.0)


def mix(values: jax.Array, indices: jax.Array, partner: jax.Array,
        fraction: jax.Array) -> jax.Array:
  """values[indices] moved by `fraction` towards values[partner]."""
  start = jnp.take(values, indices, axis=0)
  fraction = fraction.reshape(fraction.shape + (1,) * (values.ndim - 1))
  return start + fraction * (jnp.take(values, partner, axis=0) - start)


def noise_bank(num_vectors: int, shape: tuple[int, ...], std: float,
               rng: np.random.Generator) -> np.ndarray:
  """float32 [num_vectors, *shape] of N(0, std^2) values, on the host.

  Drawn once per fit: a step's noise is a random signed row per point
  (`noise_from_bits`), which costs one random word per point instead of
  one per input value: fresh normals for every input value would take a
  large share of a small MLP's step.
  """
  return std * rng.standard_normal((num_vectors, *shape), np.float32)


def noise_from_bits(bank: jax.Array, bits: jax.Array) -> jax.Array:
  """One noise vector per uint32 in `bits`: bank[row] * sign.

  The row from the top bits (index_from_bits: floor(bits * n / 2^32), the
  top log2(n) bits when n is a power of two) and the sign from the lowest
  bit, independent of them: 2 n distinct vectors, symmetric about zero
  like the Gaussian they stand for.
  """
  rows = jnp.take(bank, index_from_bits(bits, bank.shape[0]), axis=0)
  sign = 1.0 - 2.0 * (bits & 1).astype(bank.dtype)
  return rows * sign.reshape(sign.shape + (1,) * (bank.ndim - 1))
