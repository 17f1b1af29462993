"""The kNN graph: exact and approximate neighbours against scikit-learn, the
fuzzy simplicial set and query memberships against umap-learn, pruning."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from latent_jax.umap import graph as graph_lib


def test_exact_knn_matches_scikit_learn(digits):
  data = digits[0][:500]
  indices, distances = graph_lib.nearest_neighbors(data, 10)
  reference = NearestNeighbors(n_neighbors=10).fit(data)
  ref_distances, _ = reference.kneighbors(data)
  np.testing.assert_allclose(distances, ref_distances, atol=1e-4)
  assert np.all(indices[:, 0] == np.arange(500))


def test_nn_descent_recall(digits):
  data = digits[0][:800]
  exact, _ = graph_lib.nearest_neighbors(data, 10)
  approx, _ = graph_lib.nearest_neighbors(data, 10, brute_force_max_samples=0)
  recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
  assert recall > 0.95


@pytest.mark.parametrize("mix, connectivity", [(1.0, 1.0), (0.5, 1.0),
                                               (1.0, 2.0)])
def test_fuzzy_graph_matches_umap_learn(umap_learn, digits, mix,
                                        connectivity):
  data = digits[0][:600]
  indices, distances = graph_lib.nearest_neighbors(data, 15)
  ours = graph_lib.fuzzy_simplicial_set(
      indices, distances, n_neighbors=15, set_op_mix_ratio=mix,
      local_connectivity=connectivity)
  theirs, sigmas, rhos = umap_learn.fuzzy_simplicial_set(
      data, 15, 0, "euclidean", knn_indices=indices, knn_dists=distances,
      set_op_mix_ratio=mix, local_connectivity=connectivity)
  assert np.abs(ours.toarray() - theirs.toarray()).max() < 1e-4
  our_sigmas, our_rhos = graph_lib.smooth_knn_dist(
      distances, 15, local_connectivity=connectivity)
  np.testing.assert_allclose(our_sigmas, sigmas, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(our_rhos, rhos, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_query_neighbors_match_scikit_learn(digits, metric):
  data, queries = digits[0][:700], digits[0][700:900]
  indices, distances = graph_lib.query_neighbors(data, queries, 7,
                                                 metric=metric)
  reference = NearestNeighbors(n_neighbors=7, metric=metric).fit(data)
  ref_distances, _ = reference.kneighbors(queries)
  np.testing.assert_allclose(distances, ref_distances, atol=1e-4)
  # Each returned index is at its returned distance (ties may reorder).
  recomputed = NearestNeighbors(metric=metric).fit(data).kneighbors(
      queries, 700)
  order = np.argsort(recomputed[1], axis=1)
  by_index = np.take_along_axis(recomputed[0], order, axis=1)
  np.testing.assert_allclose(
      np.take_along_axis(by_index, indices, axis=1), distances, atol=1e-4)


def test_query_memberships_match_umap_learn_transform(umap_learn, digits):
  # umap-learn's transform: smooth_knn_dist with local_connectivity - 1 = 0
  # and bipartite memberships (the nearest training point is no "self").
  data, queries = digits[0][:700], digits[0][700:900]
  _, distances = graph_lib.query_neighbors(data, queries, 15)
  ours = graph_lib.query_memberships(distances, 15)
  sigmas, rhos = umap_learn.smooth_knn_dist(distances, 15.0,
                                            local_connectivity=0.0)
  indices = np.tile(np.arange(15), (len(queries), 1))
  _, _, values, _ = umap_learn.compute_membership_strengths(
      indices, distances, sigmas, rhos, bipartite=True)
  np.testing.assert_allclose(ours.reshape(-1), values, atol=1e-4)
  assert np.all(ours > 0) and np.all(ours <= 1)


def test_pruning_drops_only_weak_edges(digits):
  indices, distances = graph_lib.nearest_neighbors(digits[0][:400], 15)
  graph = graph_lib.fuzzy_simplicial_set(indices, distances)
  edges = graph_lib.graph_edges(graph, prune_epochs=10)
  threshold = graph.data.max() / 10
  assert len(edges.weight) == np.sum(graph.data >= threshold)
  assert edges.weight.min() >= threshold
  # Symmetric graph: both directions of each edge are kept.
  pairs = set(zip(edges.head.tolist(), edges.tail.tolist()))
  assert all((t, h) in pairs for h, t in pairs)
