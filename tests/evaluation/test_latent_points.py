"""Latent points from text: the codes they name, and errors naming the flag."""

import numpy as np
import pytest

from latent_jax.evaluation.latent_points import (parse_dims, parse_point,
                                                 resolve_point)


def _resolve(text, context, flag="trajectory_start", size=None):
  return resolve_point(parse_point(text, flag), flag, codes=context.codes,
                       labels=context.labels, label_names=context.label_names,
                       categorical=context.categorical, size=size)


def test_points_resolve_to_the_codes_they_name(latent_context):
  context = latent_context(categorical=True)
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
                                                        message,
                                                        latent_context):
  with pytest.raises(ValueError, match=message) as error:
    _resolve(text, latent_context(categorical), flag="rotation_start")
  assert str(error.value).startswith(f"--rotation_start={text!r}")


def test_dims_are_checked():
  assert parse_dims("0, 2", "rotation_plane", 3) == (0, 2)
  assert parse_dims((1, 0), "manifold_dims", None) == (1, 0)
  for bad in ("0", "1,1", "a,b", "0,-1", "0,1,2"):
    with pytest.raises(ValueError, match="--rotation_plane"):
      parse_dims(bad, "rotation_plane", 3)
  with pytest.raises(ValueError, match="has 3 latent dims"):
    parse_dims("0,3", "manifold_dims", 3)
