"""Runs: the only code that knows a workdir end to end.

`RUNS` maps `config.model.kind` to the module that trains and evaluates
that kind of run; each has `train_and_evaluate(config, workdir)` and
`evaluate_workdir(workdir, figures=None, ...)`. Entry points dispatch
through `run_module`; an unknown kind lists the known ones.
"""

from __future__ import annotations

import types

from latent_jax.runs import umap, vae

RUNS: dict[str, types.ModuleType] = {"vae": vae, "ae": vae, "umap": umap}


def run_module(kind: str) -> types.ModuleType:
  """The module of run kind `kind` ("vae", "ae" or "umap")."""
  if kind not in RUNS:
    raise ValueError(f"Invalid config value model.kind={kind!r}: must be "
                     f"one of {sorted(RUNS)}.")
  return RUNS[kind]
