"""Latent points named in text, as on the `experiments.evaluate` command line.

A point is one of

  `0.5,-1,2`       coordinates: one number per latent dim (or per view dim)
  `origin`         the zero code (a VAE's prior mean)
  `mean`           the mean test code
  `class:3`        the prototype (mean test code) of class 3 of the dataset's
                   class label (digits' digit, heatmaps_t's df)
  `var_x=0.5`      the prototype of the class, or of the quantile bin of a
                   continuous label, holding that value (as in prototypes.png)

Parsing (`parse_point`) checks the syntax alone, so a typo fails before a
checkpoint is restored; `resolve_point` needs the codes and labels. Every
error names the flag (or field) it came from and lists what is accepted.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import numpy as np

from latent_jax.evaluation.prototypes import prototype_for_value

HELP = ("comma-separated coordinates (one per latent dim), `origin`, "
        "`mean`, `class:<value>` or `<label>=<value>`")


@dataclasses.dataclass(frozen=True)
class PointSpec:
  """A parsed point: `kind` is coords, origin, mean, class or label."""

  text: str
  kind: str
  coordinates: tuple[float, ...] = ()
  label: str | None = None
  value: float | None = None


def _error(flag: str, text: str, problem: str) -> ValueError:
  return ValueError(f"--{flag}={text!r}: {problem}")


def _number(flag: str, text: str, item: str) -> float:
  try:
    number = float(item)
  except ValueError:
    raise _error(flag, text, f"{item!r} is not a number; give {HELP}."
                 ) from None
  if not np.isfinite(number):
    raise _error(flag, text, f"{item!r} is not a finite number.")
  return number


def parse_point(text: str, flag: str) -> PointSpec:
  """Parses one point; ValueError naming `flag` on bad syntax."""
  stripped = text.strip()
  if not stripped:
    raise _error(flag, text, f"empty; give {HELP}.")
  if stripped in ("origin", "mean"):
    return PointSpec(text, stripped)
  if stripped.startswith("class:"):
    return PointSpec(text, "class",
                     value=_number(flag, text, stripped[len("class:"):]))
  if "=" in stripped:
    label, _, value = stripped.partition("=")
    if not label.strip():
      raise _error(flag, text, f"no label before '='; give {HELP}.")
    return PointSpec(text, "label", label=label.strip(),
                     value=_number(flag, text, value))
  if stripped[0].isalpha() and "," not in stripped:
    raise _error(flag, text, f"unknown point {stripped!r}; give {HELP}.")
  return PointSpec(text, "coords", coordinates=tuple(
      _number(flag, text, item) for item in stripped.split(",")))


def parse_dims(text: str | Sequence[int], flag: str, latent_dim: int | None
               ) -> tuple[int, int]:
  """Two distinct latent dims from `"0,2"` (or a pair); checks the range
  once `latent_dim` is known."""
  items = text.split(",") if isinstance(text, str) else list(text)
  try:
    dims = tuple(int(str(item).strip()) for item in items)
  except ValueError:
    dims = ()
  if len(dims) != 2 or dims[0] == dims[1] or min(dims) < 0:
    raise ValueError(f"--{flag}={text!r}: give two distinct latent dims "
                     "as `i,j` (e.g. 0,2).")
  if latent_dim is not None and max(dims) >= latent_dim:
    raise ValueError(f"--{flag}={text!r}: the model has {latent_dim} latent "
                     f"dims (0..{latent_dim - 1}).")
  return dims


class ResolvedPoint(NamedTuple):
  """A point of the command line, as a code."""
  code: np.ndarray  # [D] (or [2] for coordinates in a 2-D view)
  description: str


def resolve_point(spec: PointSpec, flag: str, *, codes: np.ndarray,
                  labels: np.ndarray, label_names: Sequence[str],
                  categorical: Sequence[bool], size: int | None = None
                  ) -> ResolvedPoint:
  """The code and a short description of a parsed point.

  Args:
    spec: from `parse_point`.
    flag: named in errors.
    codes: [N, D] test codes; labels: [N, L] with `label_names`, and
      `categorical` flags per label.
    size: how many coordinates a `coords` point must have (default D; 2 for
      a point in a 2-D view, which the caller then uses as is).
  """
  codes = np.asarray(codes, np.float32)
  labels = np.asarray(labels).reshape(len(codes), -1)
  size = codes.shape[1] if size is None else size
  if spec.kind == "coords":
    if len(spec.coordinates) != size:
      space = "view" if size != codes.shape[1] else "latent space"
      raise _error(flag, spec.text, f"{len(spec.coordinates)} coordinate(s), "
                   f"but the {space} has {size} dims; give {size} "
                   "comma-separated numbers.")
    return ResolvedPoint(
        np.asarray(spec.coordinates, np.float32),
        "(" + ", ".join(f"{c:g}" for c in spec.coordinates) + ")")
  if spec.kind == "origin":
    return ResolvedPoint(np.zeros(codes.shape[1], np.float32), "origin")
  if spec.kind == "mean":
    return ResolvedPoint(codes.mean(axis=0), "mean code")
  if spec.kind == "class":
    columns = [i for i, flag_ in enumerate(categorical) if flag_]
    if not columns:
      raise _error(flag, spec.text, "this dataset has no class label (its "
                   f"labels {list(label_names)} are continuous); use "
                   "<label>=<value> to pick the prototype of the bin holding "
                   "a value.")
    column = columns[-1]  # the class label the latent kNN classifier uses
  else:
    if spec.label not in label_names:
      raise _error(flag, spec.text, f"unknown label {spec.label!r}; labels: "
                   f"{list(label_names)}.")
    column = list(label_names).index(spec.label)
  try:
    name, code = prototype_for_value(codes, labels[:, column],
                                     categorical[column], spec.value)
  except ValueError as error:
    raise _error(flag, spec.text, f"{label_names[column]}: {error}."
                 ) from None
  return ResolvedPoint(np.asarray(code, np.float32),
                       f"{label_names[column]}={name} prototype")
