"""Exploration options: points from text, errors naming the flag, the plan
chosen from the data, every exploration figure, and the evaluate CLI."""

import os
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest

from latent_jax.evaluation import exploration
from latent_jax.evaluation.exploration import (ExplorationOptions,
                                               LatentContext, draw_figure,
                                               plan_exploration)
from latent_jax.evaluation.latent_points import (parse_dims, parse_point,
                                                 resolve_point)
from latent_jax.evaluation.trajectories import path_plane

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _context(categorical: bool, dim: int = 3, n: int = 600) -> LatentContext:
  """Codes whose first dim is the class id (or a continuous label)."""
  rng = np.random.default_rng(0)
  if categorical:
    first = rng.integers(0, 4, n).astype(np.float64)
    labels = np.stack([first, rng.random(n)], axis=1)
    names, flags = ("digit", "width"), (True, False)
  else:
    first = rng.random(n) * 4
    labels = np.stack([first, rng.random(n)], axis=1)
    names, flags = ("var_x", "corr"), (False, False)
  codes = rng.normal(size=(n, dim)) * 0.3
  codes[:, 0] += first
  return LatentContext(codes.astype(np.float32), labels, names, flags,
                       np.zeros(dim, np.float32), np.ones(dim, np.float32))


def _resolve(text, context, flag="trajectory_start", size=None):
  return resolve_point(parse_point(text, flag), flag, codes=context.codes,
                       labels=context.labels, label_names=context.label_names,
                       categorical=context.categorical, size=size)


def test_points_resolve_to_the_codes_they_name():
  context = _context(categorical=True)
  codes, digits = context.codes, context.labels[:, 0]
  np.testing.assert_allclose(_resolve("1,-2.5,3e-1", context)[0],
                             [1, -2.5, 0.3])
  np.testing.assert_allclose(_resolve("origin", context)[0], 0)
  np.testing.assert_allclose(_resolve("mean", context)[0], codes.mean(0),
                             rtol=1e-5)
  code, name = _resolve("class:2", context)
  np.testing.assert_allclose(code, codes[digits == 2].mean(0), rtol=1e-5)
  assert name == "digit=2 prototype"
  np.testing.assert_allclose(_resolve("digit=3", context)[0],
                             codes[digits == 3].mean(0), rtol=1e-5)
  # A continuous label: the quantile bin (6 bins) holding the value.
  width = context.labels[:, 1]
  edges = np.quantile(width, np.linspace(0, 1, 7))
  inside = (width >= edges[1]) & (width < edges[2])
  value = (edges[1] + edges[2]) / 2
  np.testing.assert_allclose(_resolve(f"width={value}", context)[0],
                             codes[inside].mean(0), rtol=1e-5)


@pytest.mark.parametrize("text, message", [
    ("1,a", "'a' is not a number"),
    ("", "empty"),
    ("middle", "unknown point 'middle'"),
    ("class:x", "'x' is not a number"),
    ("=3", "no label before"),
    ("1,nan", "not a finite number"),
])
def test_bad_point_syntax_names_the_flag(text, message):
  with pytest.raises(ValueError, match=message) as error:
    parse_point(text, "trajectory_end")
  assert str(error.value).startswith(f"--trajectory_end={text!r}")


@pytest.mark.parametrize("categorical, text, message", [
    (True, "1,2", "2 coordinate\\(s\\), but the latent space has 3 dims"),
    (True, "class:7", "no test image has the class 7; classes: 0, 1, 2, 3"),
    (True, "size=1", "unknown label 'size'; labels: \\['digit', 'width'\\]"),
    (False, "class:1", "no class label"),
    (False, "var_x=9", "outside the test labels' range"),
])
def test_points_that_do_not_fit_the_data_name_the_flag(categorical, text,
                                                        message):
  with pytest.raises(ValueError, match=message) as error:
    _resolve(text, _context(categorical), flag="rotation_start")
  assert str(error.value).startswith(f"--rotation_start={text!r}")


def test_dims_are_checked():
  assert parse_dims("0, 2", "rotation_plane", 3) == (0, 2)
  assert parse_dims((1, 0), "manifold_dims", None) == (1, 0)
  for bad in ("0", "1,1", "a,b", "0,-1", "0,1,2"):
    with pytest.raises(ValueError, match="--rotation_plane"):
      parse_dims(bad, "rotation_plane", 3)
  with pytest.raises(ValueError, match="has 3 latent dims"):
    parse_dims("0,3", "manifold_dims", 3)


def test_default_plan_is_chosen_from_the_data():
  context = _context(categorical=True)
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
  plain = plan_exploration(None, _context(categorical=False))
  np.testing.assert_allclose(plain.traversal_base, 0)
  start, end, _ = plain.view_line
  assert start[1] == end[1] and start[0] < end[0]


def test_user_points_and_planes_are_used():
  context = _context(categorical=True)
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
def test_every_exploration_figure_renders(tmp_path, dim):
  context = _context(categorical=True, dim=dim)
  plan = plan_exploration(None, context)
  calls = []

  def decode(codes):
    calls.append(np.shape(codes))
    level = 1 / (1 + np.exp(-np.asarray(codes)[:, :1]))
    ramp = np.linspace(0.2, 1.0, 8)[None, :, None, None]
    return level[:, :, None, None] * ramp * np.ones((1, 1, 8, 1))

  for name in exploration.FIGURES:
    if dim == 4 and name == "latent_umap":
      continue  # fitting a UMAP is slow; the 2-D context covers it
    path = str(tmp_path / f"{name}.png")
    written = draw_figure(name, plan, context, decode, path, "gray")
    if dim == 1 and name in ("manifold", "latent_pca", "latent_umap"):
      assert written is None and not os.path.exists(path)  # needs 2 dims
      continue
    assert written == path
    image = mpimg.imread(path)
    assert image[..., :3].std() > 0.02, name
  with pytest.raises(ValueError, match="Unknown exploration figure"):
    draw_figure("nope", plan, context, decode, str(tmp_path / "x.png"))


def test_any_view_plugs_in_with_its_own_project_and_invert(tmp_path):
  # Stands in for ParametricUMAP: a non-linear but invertible 2-D view.
  context = _context(categorical=True)
  plan = plan_exploration(ExplorationOptions(view_line_end="class:2"),
                          context)
  pca = plan.pca

  def project(codes):
    return np.tanh(pca.project(codes) / 4)

  def invert(points):
    return pca.invert(np.arctanh(np.clip(points, -0.999, 0.999)) * 4)

  decoded = []

  def decode(codes):
    decoded.append(np.array(codes))
    return np.full((len(codes), 8, 8, 1), 0.5) + np.linspace(
        -0.4, 0.4, 8)[None, :, None, None]

  out = str(tmp_path / "view.png")
  assert exploration.draw_projection_view(
      decode, context, plan, project, invert, out, method="toy",
      inverse_name="toy inverse") == out
  # The line ends at the class-2 prototype, mapped by this view's project.
  prototype = context.codes[context.labels[:, 0] == 2].mean(0)
  np.testing.assert_allclose(project(decoded[0][-1:]),
                             project(prototype[None]), atol=1e-4)
  assert mpimg.imread(out)[..., :3].std() > 0.02


def _evaluate_cli(*flags):
  return subprocess.run(
      [sys.executable, "-m", "experiments.evaluate", "--workdir=/nonexistent",
       *flags], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_evaluate_cli_rejects_bad_points_before_loading_anything():
  result = _evaluate_cli("--trajectory_start=1,a", "--rotation_plane=0,1")
  assert result.returncode != 0
  assert "--trajectory_start='1,a': 'a' is not a number" in result.stderr
  assert "Traceback" not in result.stderr
  result = _evaluate_cli("--rotation_plane=3")
  assert result.returncode != 0
  assert "--rotation_plane='3': give two distinct latent dims" in (
      result.stderr)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
  """A smoke VAE on the digits (latent 2, a class label), trained once."""
  from experiments.configs import vae_digits
  from latent_jax.train import loop
  workdir = str(tmp_path_factory.mktemp("vae_digits"))
  config = vae_digits.get_config("smoke")
  config.unlock()
  config.eval.figures = "loss_curves"
  config.lock()
  loop.train_and_evaluate(config, workdir)
  return workdir


def test_evaluate_workdir_draws_user_points_on_a_real_model(digits_run):
  from latent_jax.train import loop
  names = "trajectories,traversals,manifold,latent_pca"
  options = ExplorationOptions(trajectory_start="class:3",
                               trajectory_end="0.5,-0.5",
                               traversal_base="origin", manifold_dims="1,0",
                               view_line_start="digit=1")
  loop.evaluate_workdir(digits_run, names, options)
  for name in names.split(","):
    image = mpimg.imread(os.path.join(digits_run, "figures", f"{name}.png"))
    assert image[..., :3].std() > 0.02, name
  with pytest.raises(ValueError, match=r"--trajectory_end='1,2,3': 3 "
                     r"coordinate\(s\), but the latent space has 2 dims"):
    loop.evaluate_workdir(digits_run, "trajectories",
                          ExplorationOptions(trajectory_end="1,2,3"))
  with pytest.raises(ValueError, match="--traversal_base='class:12': digit: "
                     "no test image has the class 12"):
    loop.evaluate_workdir(digits_run, "traversals",
                          ExplorationOptions(traversal_base="class:12"))


def test_compare_adds_a_pca_baseline_for_a_2d_run(digits_run, tmp_path):
  from sklearn.decomposition import PCA

  from experiments.compare import compare
  from latent_jax.train.loop import restore_run
  out = str(tmp_path / "compare")
  rows = compare([digits_run], out, grid=3)
  assert [row["kind"] for row in rows] == ["vae", "pca"]
  _, dataset, _, _ = restore_run(digits_run)
  train = dataset.train_images.reshape(len(dataset.train_images), -1)
  test = dataset.test_images.reshape(len(dataset.test_images), -1)
  reference = PCA(n_components=2).fit(train)
  errors = np.linalg.norm(
      reference.inverse_transform(reference.transform(test)) - test, axis=1)
  assert rows[1]["frobenius"] == pytest.approx(errors.mean(), rel=1e-6)
  assert rows[1]["frobenius_p95"] == pytest.approx(
      np.percentile(errors, 95), rel=1e-6)
  assert "pca_2d" in open(os.path.join(out, "compare.csv")).read()
  assert os.path.getsize(os.path.join(out, "compare.png")) > 20_000
  assert len(compare([digits_run], out, grid=3, pca_baseline=False)) == 1
