"""VAE on seed 002's 36x36 Gaussian heatmaps (no download needed).

The default experiment; finishes in a few minutes on a 2-core CPU:

  python -m experiments.train --config=experiments/configs/vae_heatmaps.py \
      --workdir=/tmp/vae_heatmaps

Seed 002's exact Keras architecture and schedule (20 epochs, ~15 minutes on
a 2-core CPU; on an accelerator seconds):

  python -m experiments.train \
      --config=experiments/configs/vae_heatmaps.py:arch=seed002 \
      --workdir=/tmp/vae_heatmaps_seed002
"""

from experiments.configs.common import make_config


def get_config(arg=None):
  return make_config(
      arg,
      **{"data.name": "heatmaps", "model.kind": "vae", "model.arch": "small",
         "model.latent_dim": 3, "train.epochs": 20})
