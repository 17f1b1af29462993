"""The gap measure: exact nearest distances, and gapped vs dense latents."""

import numpy as np

from latent_jax.evaluation.gaps import (gap_distances, gap_summary,
                                        nearest_distances)


def test_nearest_distances_match_brute_force_numpy():
  rng = np.random.default_rng(0)
  queries, references = rng.normal(size=(700, 3, 4)), rng.normal(size=(90, 3, 4))
  brute = np.linalg.norm(queries.reshape(700, 1, -1)
                         - references.reshape(1, 90, -1), axis=-1).min(1)
  np.testing.assert_allclose(nearest_distances(queries, references), brute,
                             rtol=1e-4, atol=1e-4)


def test_a_gapped_latent_space_scores_worse_than_a_dense_one():
  rng = np.random.default_rng(1)
  mixing = rng.normal(size=(2, 16))

  def decode(codes):  # a smooth decoder: 2-D code -> 4x4 "image"
    return np.tanh(codes @ mixing).reshape(-1, 4, 4, 1)

  dense = rng.uniform(-3, 3, size=(2000, 2))
  # Two tight clusters in opposite corners: the box between them is empty.
  gapped = np.concatenate([rng.normal(-2.5, 0.2, size=(1000, 2)),
                           rng.normal(2.5, 0.2, size=(1000, 2))])
  scores = {}
  for name, codes in (("dense", dense), ("gapped", gapped)):
    distances = gap_distances(decode, codes, decode(codes), num_points=500)
    scores[name] = gap_summary(distances)
  assert (scores["gapped"]["gap_distance_mean"]
          > 3 * scores["dense"]["gap_distance_mean"])
  assert (scores["gapped"]["gap_distance_p95"]
          > scores["dense"]["gap_distance_p95"])
