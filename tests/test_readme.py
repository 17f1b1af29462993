"""The README: its size, its commands, its links, and its library example.

The README's one ```python block is run as it stands (about 20 s on a 2-core
CPU), so the example a reader copies is the example that works.
"""

import math
import os
import re

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
MAX_README_BYTES = 12_000

# CI (.ci/run) runs the test command verbatim; the training one is the
# project's entry point. They are the README's first two code blocks.
TRAIN_COMMAND = (
    "pip install -c constraints.txt -e . && python -m experiments.train "
    "--config=experiments/configs/vae_heatmaps.py "
    "--workdir=/tmp/latent_jax/vae_heatmaps")
TEST_COMMAND = ('pip install -c constraints.txt -e ".[test]" && '
                "python -m pytest -q -n 2 --dist loadfile tests")

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _readme() -> str:
  with open(README, encoding="utf-8") as file:
    return file.read()


def _code_blocks(text: str) -> list[tuple[str, str]]:
  """(language, body) of every fenced code block, in order."""
  return [(match.group(1), match.group(2)) for match in _FENCE.finditer(text)]


def test_readme_is_at_most_12000_bytes():
  size = os.path.getsize(README)
  assert size <= MAX_README_BYTES, (
      f"README.md is {size} bytes (limit {MAX_README_BYTES}): move detail "
      "to docs/.")


def test_first_two_code_blocks_are_the_setup_commands():
  blocks = _code_blocks(_readme())
  assert [body.strip() for _, body in blocks[:2]] == [TRAIN_COMMAND,
                                                       TEST_COMMAND]
  with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as file:
    assert TEST_COMMAND in file.read()


def test_relative_links_resolve():
  text = _readme()
  targets = re.findall(r"\]\(([^)\s]+)\)", text)
  assert targets, "the README links to its docs/ pages"
  for target in targets:
    if re.match(r"[a-z]+:", target) or target.startswith("#"):
      continue  # a URL or an anchor in the README itself
    path = os.path.join(REPO, target.split("#")[0])
    assert os.path.isfile(path), f"README links to missing {target}"


def test_library_example_runs(monkeypatch, tmp_path):
  python_blocks = [body for language, body in _code_blocks(_readme())
                   if language == "python"]
  assert len(python_blocks) == 1, "the README has one ```python example"
  # Generated heatmaps are cached under $LATENT_JAX_CACHE, not ~/.cache.
  monkeypatch.setenv("LATENT_JAX_CACHE", str(tmp_path / "cache"))
  namespace = {"__name__": "readme_example"}
  exec(compile(python_blocks[0], "README.md:python", "exec"), namespace)

  losses = namespace["losses"]
  assert len(losses) == 40 and all(math.isfinite(v) for v in losses)
  # The negative ELBO falls from its initial value within 40 Adam steps.
  assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses

  embedding = np.asarray(namespace["embedding"])
  new_points = np.asarray(namespace["new_points"])
  assert embedding.shape == (1200, 2) and new_points.shape == (597, 2)
  assert np.isfinite(embedding).all() and np.isfinite(new_points).all()
  # The embedding separates the digits: same-class neighbours dominate.
  y = namespace["y"]
  distances = ((embedding[:, None] - embedding[None]) ** 2).sum(-1)
  np.fill_diagonal(distances, np.inf)
  nearest = distances.argmin(1)
  assert np.mean(y[:1200][nearest] == y[:1200]) > 0.8
