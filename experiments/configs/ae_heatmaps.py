"""Deterministic AE on the Keras VAE-vs-AE heatmap notebook's heatmaps.

The AE counterpart of vae_heatmaps.py, for comparing the two:

  python -m experiments.train --config=experiments/configs/ae_heatmaps.py \
      --workdir=/tmp/ae_heatmaps
"""

from experiments.configs.common import make_config


def get_config(arg=None):
  return make_config(
      arg,
      **{"data.name": "heatmaps", "model.kind": "ae", "model.arch": "small",
         "model.latent_dim": 3, "train.epochs": 20})
