"""The exploration figures of a run, with their points chosen by the user or
from the data: traversals, manifold, prototypes, trajectories (the 2-D
views, whose line this plan also resolves, are drawn in `view_figures`).

`plan_exploration` resolves every option against the test codes and labels
(so a bad class or a wrong number of coordinates fails in seconds, before
the slow metrics run); `draw_figure` draws one figure and returns it. Both
take arrays and a decode callable, so a notebook can call them on any model.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Sequence

import numpy as np
from absl import logging

from latent_jax.evaluation import exploration_figures
from latent_jax.evaluation.latent_points import (parse_dims, parse_point,
                                                 resolve_point)
import matplotlib.pyplot as plt

from latent_jax.evaluation.latent_views import LinearProjection, fit_pca
from latent_jax.evaluation.prototypes import group_prototypes
from latent_jax.evaluation.trajectories import (line_path, plot_trajectories,
                                                rotation_path)

# Figures drawn here; `registry.RUN_FIGURES` lists them with the run's others.
FIGURES = ("traversals", "manifold", "prototypes", "trajectories")
# Spans of traversals and manifold grids, in units of the base scale.
SPAN = 2.5


@dataclasses.dataclass(frozen=True)
class ExplorationOptions:
  """Where the exploration figures look; None / "auto": chosen from the data.

  Points are text as `latent_points` parses them (coordinates, `origin`,
  `mean`, `class:<value>`, `<label>=<value>`); dims are `"i,j"` or a pair.

  Attributes:
    trajectory_start, trajectory_end: the line's end points (default: the
      prototypes of the lowest and highest value of the first label).
    trajectory_steps: points on each path.
    rotation_start: where the rotation starts (default: the center moved
      along the plane's first dim by the 75th percentile of the codes'
      radius in the plane).
    rotation_center: the point it turns about (default `mean`).
    rotation_plane: the two dims it turns in (default 0,1).
    rotation_degrees: how far it turns.
    traversal_base: the code traversals and the manifold grid vary around;
      "auto": the prototype of the first class when the data has a class
      label, else the prior mean (VAE) or the training codes' mean (AE).
    manifold_dims: the two dims of the manifold grid (default 0,1).
    view_line_start, view_line_end: the line in the 2-D PCA view, as two
      view coordinates `x,y` or a latent point (then projected); default:
      see `_default_view_line`.
  """

  trajectory_start: str | None = None
  trajectory_end: str | None = None
  trajectory_steps: int = 9
  rotation_start: str | None = None
  rotation_center: str | None = None
  rotation_plane: str | Sequence[int] | None = None
  rotation_degrees: float = 360.0
  traversal_base: str = "auto"
  manifold_dims: str | Sequence[int] | None = None
  view_line_start: str | None = None
  view_line_end: str | None = None

  def check_syntax(self) -> None:
    """Raises ValueError naming the option whose text cannot be parsed."""
    for name in ("trajectory_start", "trajectory_end", "rotation_start",
                 "rotation_center", "view_line_start", "view_line_end"):
      if getattr(self, name) is not None:
        parse_point(getattr(self, name), name)
    if self.traversal_base != "auto":
      parse_point(self.traversal_base, "traversal_base")
    for name in ("rotation_plane", "manifold_dims"):
      if getattr(self, name) is not None:
        parse_dims(getattr(self, name), name, None)
    if self.trajectory_steps < 2:
      raise ValueError(f"--trajectory_steps={self.trajectory_steps}: need "
                       "at least 2 points per path.")
    if not np.isfinite(self.rotation_degrees) or self.rotation_degrees == 0:
      raise ValueError(f"--rotation_degrees={self.rotation_degrees}: give a "
                       "non-zero angle in degrees (360: a full turn).")


@dataclasses.dataclass
class LatentContext:
  """What the figures are drawn from.

  Attributes:
    codes: [N, D] test codes; labels: [N, L] with `label_names` and
      `categorical` flags.
    base_mean, base_scale: [D] centre and per-dim scale of the code
      distribution (a VAE's prior N(0, I); an AE's fitted Gaussian).
    base_name: what `base_mean` is, for titles.
  """

  codes: np.ndarray
  labels: np.ndarray
  label_names: Sequence[str]
  categorical: Sequence[bool]
  base_mean: np.ndarray
  base_scale: np.ndarray
  base_name: str = "prior mean"


@dataclasses.dataclass
class ExplorationPlan:
  """Every point and path of the figures, resolved (see `plan_exploration`)."""

  options: ExplorationOptions
  paths: list[tuple[str, np.ndarray]]
  traversal_base: np.ndarray
  traversal_name: str
  manifold_dims: tuple[int, int] | None
  pca: LinearProjection | None
  view_line: tuple[np.ndarray, np.ndarray, str] | None


def _resolve(options: ExplorationOptions, name: str, context: LatentContext
             ) -> tuple[np.ndarray, str]:
  """The latent code (and its description) of point option `name`."""
  return resolve_point(parse_point(getattr(options, name), name), name,
                       codes=context.codes, labels=context.labels,
                       label_names=context.label_names,
                       categorical=context.categorical)


def _extreme_prototypes(context: LatentContext
                        ) -> tuple[np.ndarray, np.ndarray, str, str]:
  """Prototypes of the lowest and highest value of the first label."""
  names, means = group_prototypes(context.codes, context.labels[:, 0],
                                  context.categorical[0])
  label = context.label_names[0]
  return (means[0].astype(np.float32), means[-1].astype(np.float32),
          f"{label}={names[0]} prototype", f"{label}={names[-1]} prototype")


def _default_view_line(context: LatentContext,
                       project: Callable[[np.ndarray], np.ndarray]
                       ) -> tuple[tuple[np.ndarray, str],
                                  tuple[np.ndarray, str]]:
  """The view line's default end points, each (view point [2], name).

  With a class label first: between the projected prototypes of its first
  and last class (the Keras MLP-autoencoder notebook's morph from one digit
  to another). Otherwise across the bulk of the view along its first axis
  (5th to 95th percentile, at the median of the second): prototypes of a
  continuous label average over the other labels and all project near the
  centre.
  """
  if context.categorical[0]:
    first, last, first_name, last_name = _extreme_prototypes(context)
    view = np.asarray(project(np.stack([first, last])), np.float64)
    return (view[0], first_name), (view[1], last_name)
  view = np.asarray(project(np.asarray(context.codes, np.float32)),
                    np.float64)
  low, high = np.percentile(view[:, 0], [5, 95])
  middle = float(np.median(view[:, 1]))
  return ((np.array([low, middle]), "axis 1 from its 5th"),
          (np.array([high, middle]), "95th percentile"))


class LineEnds(NamedTuple):
  """A line in a 2-D view of the codes."""
  start: np.ndarray  # [2] view coordinates
  end: np.ndarray    # [2]
  description: str


def resolve_view_line(options: ExplorationOptions, context: LatentContext,
                      project: Callable[[np.ndarray], np.ndarray]
                      ) -> LineEnds:
  """The start, end and description of the line in a 2-D view.

  Coordinates are view coordinates; any other point is a latent code that
  `project` maps into the view. Unset ends: `_default_view_line`.
  """
  defaults = _default_view_line(context, project)
  ends = []
  for name, default in zip(("view_line_start", "view_line_end"), defaults):
    if getattr(options, name) is None:
      ends.append(default)
      continue
    spec = parse_point(getattr(options, name), name)
    code, description = resolve_point(
        spec, name, codes=context.codes, labels=context.labels,
        label_names=context.label_names, categorical=context.categorical,
        size=2 if spec.kind == "coords" else None)
    point = (code if spec.kind == "coords"
             else np.asarray(project(code[None]))[0])
    ends.append((np.asarray(point, np.float64), description))
  (start, start_name), (end, end_name) = ends
  return LineEnds(start, end, f"{start_name} -> {end_name}")


def plan_exploration(options: ExplorationOptions | None,
                     context: LatentContext) -> ExplorationPlan:
  """Resolves every option; ValueError naming the option that is wrong."""
  options = options or ExplorationOptions()
  options.check_syntax()
  codes = np.asarray(context.codes, np.float32)
  dim = codes.shape[1]
  steps = options.trajectory_steps

  # --- Line between two points -------------------------------------------
  default_start, default_end, start_name, end_name = _extreme_prototypes(
      context)
  start, start_name = ((default_start, start_name)
                       if options.trajectory_start is None else
                       _resolve(options, "trajectory_start", context))
  end, end_name = ((default_end, end_name) if options.trajectory_end is None
                   else _resolve(options, "trajectory_end", context))
  paths = [(f"line: {start_name} -> {end_name}",
            line_path(start, end, steps))]

  # --- Rotation (the Keras VAE-vs-AE heatmap notebook's): needs a plane ---
  if dim > 1:
    plane = parse_dims(options.rotation_plane or (0, 1), "rotation_plane",
                       dim)
    center, center_name = (
        (codes.mean(axis=0), "mean code") if options.rotation_center is None
        else _resolve(options, "rotation_center", context))
    if not center_name.startswith("("):  # coordinates read well without it
      center_name = f"the {center_name}"
    if options.rotation_start is None:
      rotation_start = center.copy()
      radius = np.hypot(*(codes[:, plane] - center[list(plane)]).T)
      rotation_start[plane[0]] += np.percentile(radius, 75)
    else:
      rotation_start, _ = _resolve(options, "rotation_start", context)
    paths.append((
        f"rotation: {options.rotation_degrees:g} deg in z{plane[0]}-"
        f"z{plane[1]} about {center_name}",
        rotation_path(rotation_start, center, plane, steps,
                      np.deg2rad(options.rotation_degrees))))
  elif options.rotation_plane is not None:
    parse_dims(options.rotation_plane, "rotation_plane", dim)  # says why

  # --- Traversal / manifold base -------------------------------------------
  if options.traversal_base == "auto":
    classes = [i for i, flag in enumerate(context.categorical) if flag]
    if classes:
      column = classes[-1]
      names, means = group_prototypes(codes, context.labels[:, column], True)
      base = means[0].astype(np.float32)
      base_name = f"the {context.label_names[column]}={names[0]} prototype"
    else:
      base = np.asarray(context.base_mean, np.float32)
      base_name = f"the {context.base_name}"
  else:
    base, base_name = _resolve(options, "traversal_base", context)
    if not base_name.startswith("("):  # coordinates read well without "the"
      base_name = f"the {base_name}"
  manifold_dims = (parse_dims(options.manifold_dims or (0, 1),
                              "manifold_dims", dim) if dim > 1 else None)
  if dim == 1 and options.manifold_dims is not None:
    parse_dims(options.manifold_dims, "manifold_dims", dim)  # says why

  # --- 2-D PCA view ---------------------------------------------------------
  pca = view_line = None
  if dim > 1:
    pca = fit_pca(codes, 2)
    view_line = resolve_view_line(options, context, pca.project)
  return ExplorationPlan(options, paths, base, base_name, manifold_dims, pca,
                         view_line)


def draw_figure(name: str, plan: ExplorationPlan, context: LatentContext,
                decode: Callable[[np.ndarray], np.ndarray],
                path: str | None = None, cmap: str = "viridis"
                ) -> plt.Figure | None:
  """Figure `name` (one of FIGURES), open, and written to `path` when
  given; None (logged) if it does not apply."""
  if name == "traversals":
    return exploration_figures.plot_traversals(
        decode, plan.traversal_base, path, span=SPAN,
        scales=context.base_scale, cmap=cmap,
        title=f"Latent traversals around {plan.traversal_name}")
  if name == "manifold":
    if plan.manifold_dims is None:
      logging.warning("Skipping manifold.png: it needs two latent dims.")
      return None
    i, j = plan.manifold_dims
    return exploration_figures.plot_manifold_grid(
        decode, plan.manifold_dims, plan.traversal_base, path, span=SPAN,
        scales=context.base_scale, cmap=cmap,
        title=f"Decoded manifold over z{i}, z{j}; the other dims at "
        f"{plan.traversal_name}")
  if name == "prototypes":
    groups = []
    for column, label in enumerate(context.label_names):
      names, means = group_prototypes(context.codes,
                                      context.labels[:, column],
                                      context.categorical[column])
      groups.append((label, names, means,
                     decode(means.astype(np.float32))))
    return exploration_figures.plot_prototypes(groups, path, cmap=cmap)
  if name == "trajectories":
    return plot_trajectories(decode, context.codes, context.labels[:, 0],
                             context.label_names[0], plan.paths, path,
                             cmap=cmap,
                             categorical=bool(context.categorical[0]))
  raise ValueError(f"Unknown exploration figure {name!r}; known: "
                   f"{list(FIGURES)}.")
