"""The training plan: full-batch step counts known before the graph."""

from latent_jax import ParametricUMAP
from latent_jax.umap import plan
from latent_jax.umap.sampling import max_edges


def test_full_batch_plan_is_known_before_the_graph():
  # So the fit can compile its training programs while the graph is built.
  reducer = ParametricUMAP().get_params()
  for num_points in (100, 1437, 5000, 10_000):
    early = plan.plan(reducer, num_points, None)
    for num_edges in (num_points * 15, max_edges(num_points, 15)):
      late = plan.plan(reducer, num_points, num_edges)
      assert (early.init_steps, early.umap_steps) == (late.init_steps,
                                                      late.umap_steps)
      assert late.layout_steps == plan.layout_steps(reducer, num_points, num_edges)
  # Smaller data gets more (cheaper) full-batch steps.
  assert plan.plan(reducer, 1437, None).umap_steps > plan.plan(reducer, 
      5000, None).umap_steps
  # Minibatches: the step count needs the edge count.
  assert plan.plan(reducer, 20_000, None) is None
  given = ParametricUMAP(n_epochs=10, batch_size=1000,
                         full_batch_max_points=1000).get_params()
  assert plan.plan(given, 5000, None) is None
  assert plan.plan(given, 5000, 12_345).umap_steps == 124  # ceil(10 * 12,345 / 1,000)
  # Full batch: each step scores every edge, one epoch per step.
  assert plan.plan(given, 1000, None).umap_steps == 10
