"""Exploration plans: chosen from the data or from the user's points and
planes; every exploration figure renders; any 2-D view plugs in."""

import os

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from latent_jax.evaluation import exploration, view_figures
from latent_jax.evaluation.exploration import (ExplorationOptions,
                                               draw_figure, plan_exploration)
from latent_jax.evaluation.trajectories import path_plane


def test_default_plan_is_chosen_from_the_data(latent_context):
  context = latent_context(categorical=True)
  plan = plan_exploration(None, context)
  digits = context.labels[:, 0]
  (line_name, line), (rotation_name, rotation) = plan.paths
  # The line joins the prototypes of the first and the last class.
  np.testing.assert_allclose(line[0], context.codes[digits == 0].mean(0),
                             rtol=1e-5)
  np.testing.assert_allclose(line[-1], context.codes[digits == 3].mean(0),
                             rtol=1e-5)
  assert "digit=0 prototype -> digit=3 prototype" in line_name
  # A full turn in z0-z1 about the mean code, closing on its start.
  assert path_plane(rotation) == (0, 1) and "z0-z1" in rotation_name
  np.testing.assert_allclose(rotation[0], rotation[-1], atol=1e-5)
  np.testing.assert_allclose(rotation[:, 2], rotation[0, 2])
  # Traversals go around the first class's prototype.
  np.testing.assert_allclose(plan.traversal_base,
                             context.codes[digits == 0].mean(0), rtol=1e-5)
  assert plan.manifold_dims == (0, 1)
  # The view line joins the projected first and last class prototypes.
  start, end, _ = plan.view_line
  np.testing.assert_allclose(
      [start, end], plan.pca.project(line[[0, -1]]), atol=1e-5)
  # Without a class label: the prior mean, and a line across PC1.
  plain = plan_exploration(None, latent_context(categorical=False))
  np.testing.assert_allclose(plain.traversal_base, 0)
  start, end, _ = plain.view_line
  assert start[1] == end[1] and start[0] < end[0]


def test_user_points_and_planes_are_used(latent_context):
  context = latent_context(categorical=True)
  options = ExplorationOptions(
      trajectory_start="origin", trajectory_end="1,2,3", trajectory_steps=5,
      rotation_plane="0,2", rotation_center="origin",
      rotation_start="2,0,0", rotation_degrees=90,
      traversal_base="class:3", manifold_dims="2,1",
      view_line_start="-1,0", view_line_end="class:1")
  plan = plan_exploration(options, context)
  (_, line), (_, rotation) = plan.paths
  np.testing.assert_allclose(line[[0, -1]], [[0, 0, 0], [1, 2, 3]])
  assert len(line) == 5
  np.testing.assert_allclose(rotation[-1], [0, 0, 2], atol=1e-5)
  np.testing.assert_allclose(rotation[:, 1], 0)
  np.testing.assert_allclose(
      plan.traversal_base, context.codes[context.labels[:, 0] == 3].mean(0),
      rtol=1e-5)
  assert plan.manifold_dims == (2, 1)
  start, end, _ = plan.view_line
  np.testing.assert_allclose(start, [-1, 0])
  np.testing.assert_allclose(
      end, plan.pca.project(context.codes[context.labels[:, 0] == 1].mean(
          0)[None])[0], atol=1e-5)
  with pytest.raises(ValueError, match="--trajectory_steps"):
    plan_exploration(ExplorationOptions(trajectory_steps=1), context)
  with pytest.raises(ValueError, match="--view_line_end='1,2,3'.*view"):
    plan_exploration(ExplorationOptions(view_line_end="1,2,3"), context)


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_every_exploration_figure_renders(tmp_path, dim, latent_context,
                                          fake_decoder):
  context = latent_context(categorical=True, dim=dim)
  plan = plan_exploration(None, context)
  decode = fake_decoder(8)

  draws = {name: draw_figure for name in exploration.FIGURES}
  draws.update({name: view_figures.draw_view for name in view_figures.FIGURES
                if name != "latent_tsne"})  # test_view_figures draws it
  for name, draw in draws.items():
    if dim == 4 and name == "latent_umap":
      continue  # fitting a UMAP is slow; the 2-D context covers it
    path = str(tmp_path / f"{name}.png")
    figure = draw(name, plan, context, decode, path, "gray")
    if dim == 1 and name in ("manifold", "latent_pca", "latent_umap"):
      assert figure is None and not os.path.exists(path)  # needs 2 dims
      continue
    assert plt.fignum_exists(figure.number)  # returned open, for notebooks
    plt.close(figure)
    image = mpimg.imread(path)
    assert image[..., :3].std() > 0.02, name
  assert not plt.get_fignums()
  with pytest.raises(ValueError, match="Unknown exploration figure"):
    draw_figure("nope", plan, context, decode, str(tmp_path / "x.png"))
  with pytest.raises(ValueError, match="Unknown view figure"):
    view_figures.draw_view("nope", plan, context, decode)


def test_any_view_plugs_in_with_its_own_project_and_invert(tmp_path,
                                                            latent_context,
                                                            fake_decoder):
  # Stands in for ParametricUMAP: a non-linear but invertible 2-D view.
  context = latent_context(categorical=True)
  plan = plan_exploration(ExplorationOptions(view_line_end="class:2"),
                          context)
  pca = plan.pca

  def project(codes):
    return np.tanh(pca.project(codes) / 4)

  def invert(points):
    return pca.invert(np.arctanh(np.clip(points, -0.999, 0.999)) * 4)

  decode = fake_decoder(8)
  out = str(tmp_path / "view.png")
  plt.close(view_figures.draw_projection_view(
      decode, context, plan, project, invert, out, method="toy",
      inverse_name="toy inverse"))
  # The line ends at the class-2 prototype, mapped by this view's project.
  prototype = context.codes[context.labels[:, 0] == 2].mean(0)
  np.testing.assert_allclose(project(decode.calls[0][-1:]),
                             project(prototype[None]), atol=1e-4)
  assert mpimg.imread(out)[..., :3].std() > 0.02
