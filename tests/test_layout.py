"""The library's layers import only downward; no private name crosses a
package; no module is over 450 lines."""

import ast
import pathlib

import pytest

LIBRARY = pathlib.Path(__file__).resolve().parents[1] / "latent_jax"
# package -> packages it must never import (lazily or not).
NEVER = {
    "data": {"models", "losses", "train", "umap", "evaluation", "runs"},
    "models": {"data", "train", "umap", "evaluation", "runs"},
    "losses": {"data", "models", "train", "umap", "evaluation", "runs"},
    "train": {"umap", "evaluation", "runs"},
    "umap": {"evaluation", "runs"},
    "evaluation": {"train", "runs"},
}


def _package(path: pathlib.Path) -> str:
  parts = path.relative_to(LIBRARY).parts
  return parts[0].removesuffix(".py")


def _imports(path: pathlib.Path):
  """(line, imported latent_jax package, [imported names]) of every import."""
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and (
        node.module.split(".")[0] == "latent_jax"):
      parts = node.module.split(".")
      names = [alias.name for alias in node.names]
      for target in ([parts[1]] if len(parts) > 1 else names):
        yield node.lineno, target, names
    elif isinstance(node, ast.Import):
      for alias in node.names:
        parts = alias.name.split(".")
        if parts[0] == "latent_jax" and len(parts) > 1:
          yield node.lineno, parts[1], []


MODULES = sorted(LIBRARY.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(
    p.relative_to(LIBRARY)))
def test_imports_go_only_downward_and_names_stay_public(path):
  package = _package(path)
  for line, target, names in _imports(path):
    assert target not in NEVER.get(package, ()), (
        f"{path.name}:{line}: layer {package!r} imports {target!r}")
    if target != package:
      private = [name for name in names if name.startswith("_")]
      assert not private, f"{path.name}:{line}: imports private {private}"


def test_the_walk_sees_the_layers():
  """The rules above are checked on real imports (a guard against a walk
  that silently finds nothing)."""
  seen = {(_package(p), t) for p in MODULES for _, t, _ in _imports(p)}
  assert ("runs", "train") in seen and ("umap", "train") in seen
  assert ("evaluation", "umap") in seen


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(
    p.relative_to(LIBRARY)))
def test_modules_hold_one_idea(path):
  assert path.read_text().count("\n") <= 450, f"{path}: split it by idea"
