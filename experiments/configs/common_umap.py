"""Config pieces of the parametric UMAP experiments (`model.kind="umap"`).

The shared sections (seed, data, train cadences, eval) come from
`common.base_config`; the `umap` section holds ParametricUMAP's keywords.
`model.arch` is the encoder preset and `model.latent_dim` is
`n_components`. Settings: `:n_neighbors=30,min_dist=0.3,encoder=conv,smoke`,
or any field with `--config.umap.<field>=...`.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from experiments.configs import common
from latent_jax.umap.estimator import ENCODER_ALIASES

UMAP_SHORTCUTS = {
    **common.ARG_SHORTCUTS,
    "n_neighbors": "umap.n_neighbors",
    "min_dist": "umap.min_dist",
    "n_components": "model.latent_dim",
    "encoder": "model.arch",
    "n_epochs": "umap.n_epochs",
}


def umap_section() -> ml_collections.ConfigDict:
  section = ml_collections.ConfigDict()
  section.n_neighbors = 15
  section.min_dist = 0.1
  section.spread = 1.0
  section.metric = "euclidean"
  section.n_epochs = 0                # 0: chosen from the data size
  section.batch_size = 8192           # edges per step
  section.negative_sample_rate = 5
  section.learning_rate = 0.0  # 0: chosen from the encoder's input
  section.parametric_reconstruction = True  # decoder for inverse_transform
  section.reconstruction_weight = 1.0
  section.autoencoder_loss = False
  section.global_correlation_loss_weight = 0.0
  section.spectral_init = True
  section.layout_init = True
  section.layout_epochs = 20
  section.init_epochs = 20
  section.init_batch_size = 512      # points per regression step
  section.full_batch_max_points = 10_000
  section.neighbor_mixing = 0.5      # augmentation towards kNN; 0: off
  section.input_noise = 0.75         # input noise std / data feature std
  section.pca_components = 50        # MLP encoder sees top PCs; 0: raw
  section.grad_clip_norm = 4.0
  return section


def shrink_umap_for_smoke(config: ml_collections.ConfigDict) -> None:
  """`smoke` for UMAP runs: the shared shrink, then a seconds-long UMAP."""
  common.shrink_for_smoke(config)
  config.eval.figures = "all"  # UMAP's own three (cheap)
  config.umap.n_epochs = 3
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
  defaults = {"model.kind": "umap", "model.arch": "umap_mlp",
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
