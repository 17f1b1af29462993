"""Config pieces of the parametric UMAP experiments (`model.kind="umap"`).

The shared sections (seed, data, train cadences, eval) come from
`common.base_config`; the `umap` section holds ParametricUMAP's keywords.
`model.arch` is the encoder preset and `model.latent_dim` is
`n_components`. Settings: `:n_neighbors=30,min_dist=0.3,encoder=conv,smoke`,
or any field with `--config.umap.<field>=...`.
"""

from __future__ import annotations

import inspect
from typing import Any

import ml_collections
from ml_collections import config_dict

from experiments.configs import common
from latent_jax.runs.umap import OWNED_ELSEWHERE
from latent_jax.umap import ParametricUMAP
from latent_jax.umap.plan import ENCODER_ALIASES

# The type of each keyword whose default is None (chosen from the data).
_NONE_DEFAULT_TYPES = {"n_epochs": int, "learning_rate": float}

UMAP_SHORTCUTS = {
    **common.ARG_SHORTCUTS,
    "n_neighbors": "umap.n_neighbors",
    "min_dist": "umap.min_dist",
    "n_components": "model.latent_dim",
    "encoder": "model.arch",
    "n_epochs": "umap.n_epochs",
}


def umap_section() -> ml_collections.ConfigDict:
  """ParametricUMAP's keywords and defaults, read off its signature.

  The estimator is the one source of truth: every keyword except those
  other sections own (`runs.umap.OWNED_ELSEWHERE`) is a field here, with
  its default; None defaults ("chosen from the data") are typed
  placeholders, so `--config.umap.n_epochs=30` still parses.
  """
  section = ml_collections.ConfigDict()
  signature = inspect.signature(ParametricUMAP.__init__)
  for name, parameter in signature.parameters.items():
    if name == "self" or name in OWNED_ELSEWHERE:
      continue
    if parameter.default is None:
      kind = _NONE_DEFAULT_TYPES[name]
      section[name] = config_dict.placeholder(kind)
    else:
      section[name] = parameter.default
  return section


def shrink_umap_for_smoke(config: ml_collections.ConfigDict) -> None:
  """`smoke` for UMAP runs: the shared shrink, then a seconds-long UMAP."""
  common.shrink_for_smoke(config)
  config.eval.figures = "all"  # UMAP's own three (cheap)
  config.umap.n_epochs = 30  # full-batch steps
  config.umap.layout_epochs = 3
  config.umap.init_epochs = 10
  config.umap.batch_size = 1024
  config.train.log_every_steps = 10
  config.train.checkpoint_every_steps = 20
  config.train.steps_per_call = 10


def make_umap_config(arg: str | None = None, **overrides: Any
                     ) -> ml_collections.ConfigDict:
  """Base config + `umap` section + experiment `overrides` + `arg`."""
  base = common.base_config()
  base.umap = umap_section()
  defaults = {"model.kind": "umap", "model.arch": "mlp",
              # a decoder, for inverse_transform and the inverse grid
              "umap.parametric_reconstruction": True,
              "model.latent_dim": 2, "train.log_every_steps": 100,
              "train.checkpoint_every_steps": 500,
              "train.steps_per_call": 100, "eval.figures": "all"}
  config = common.make_config(arg, base=base, shortcuts=UMAP_SHORTCUTS,
                              shrink=shrink_umap_for_smoke,
                              **{**defaults, **overrides})
  # encoder=mlp / conv: ParametricUMAP's names for the presets.
  config.model.arch = ENCODER_ALIASES.get(config.model.arch,
                                          config.model.arch)
  return config
