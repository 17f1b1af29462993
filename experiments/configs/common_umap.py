"""Config pieces of the parametric UMAP experiments (`model.kind="umap"`).

The shared sections (seed, data, train cadences, eval) come from
`common.base_config`; the `umap` section holds ParametricUMAP's keywords.
`model.arch` is the encoder preset and `model.latent_dim` is
`n_components`. Settings: `:n_neighbors=30,min_dist=0.3,smoke`, or any
field with `--config.umap.<field>=...`.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from experiments.configs import common
from latent_jax.umap.estimator import ENCODER_ALIASES

UMAP_SHORTCUTS = {
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
  section.learning_rate = 1e-2
  section.parametric_reconstruction = True  # decoder for inverse_transform
  section.reconstruction_weight = 1.0
  section.autoencoder_loss = False
  section.global_correlation_loss_weight = 0.0
  section.spectral_init = True
  section.layout_init = True
  section.layout_epochs = 30
  section.init_epochs = 200
  section.full_batch_max_points = 10_000
  section.grad_clip_norm = 4.0
  return section


def make_umap_config(arg: str | None = None, **overrides: Any
                     ) -> ml_collections.ConfigDict:
  """Base config + `umap` section + experiment `overrides` + `arg`."""
  umap_settings = {}
  rest = []
  for item in filter(None, (p.strip() for p in (arg or "").split(","))):
    key, sep, value = item.partition("=")
    if sep and key in UMAP_SHORTCUTS:
      umap_settings[UMAP_SHORTCUTS[key]] = value
    else:
      rest.append(item)
  defaults = {"model.kind": "umap", "model.arch": "umap_mlp",
              "model.latent_dim": 2, "train.log_every_steps": 100,
              "train.checkpoint_every_steps": 500, "train.steps_per_call": 100,
              "eval.figures": "all"}
  defaults.update(overrides)
  umap_defaults = {k: v for k, v in defaults.items() if k.startswith("umap.")}
  config = common.make_config(
      ",".join(rest), **{k: v for k, v in defaults.items()
                         if not k.startswith("umap.")})
  smoke, _ = common.parse_arg(",".join(rest))
  with config.unlocked():
    config.umap = umap_section()
    for path, value in umap_defaults.items():
      config.umap[path.split(".", 1)[1]] = value
    if smoke:  # seconds, for tests
      config.eval.figures = "all"  # UMAP's own three (smoke trims VAE ones)
      config.umap.n_epochs = 3
      config.umap.layout_epochs = 3
      config.umap.init_epochs = 10
      config.umap.batch_size = 1024
      config.train.log_every_steps = 10
      config.train.checkpoint_every_steps = 20
      config.train.steps_per_call = 10
    for path, raw in umap_settings.items():
      if path == "model.arch":  # encoder=mlp / conv: ParametricUMAP's names
        raw = ENCODER_ALIASES.get(raw, raw)
      section, field = path.split(".")
      config[section][field] = common._parse_value(  # pylint: disable=protected-access
          raw, config[section][field], path)
  return config
