"""Parametric UMAP: host kNN graph, device training, transform and inverse.

    from latent_jax import ParametricUMAP
    embedding = ParametricUMAP(n_components=2, random_state=0).fit_transform(X)

Pieces usable on their own: `nearest_neighbors`, `fuzzy_simplicial_set`,
`graph_edges` (graph.py), `find_ab_params` (curve.py), the device edge
sampler (sampling.py) and `losses.umap_cross_entropy`.
"""

from latent_jax.umap.curve import find_ab_params
from latent_jax.umap.estimator import ParametricUMAP
from latent_jax.umap.graph import (fuzzy_simplicial_set, graph_edges,
                                   nearest_neighbors)

__all__ = ["ParametricUMAP", "find_ab_params", "fuzzy_simplicial_set",
           "graph_edges", "nearest_neighbors"]
