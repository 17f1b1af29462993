"""VAE on the Keras VAE-vs-AE heatmap notebook's 36x36 Gaussian heatmaps.

The heatmaps are generated locally (no download needed).

The default experiment; finishes in a few minutes on a 2-core CPU:

  python -m experiments.train --config=experiments/configs/vae_heatmaps.py \
      --workdir=/tmp/vae_heatmaps

The notebook's exact Keras architecture and schedule (20 epochs, ~15 minutes
on a 2-core CPU; on an accelerator seconds):

  python -m experiments.train \
      --config=experiments/configs/vae_heatmaps.py:arch=keras_conv \
      --workdir=/tmp/vae_heatmaps_keras_conv
"""

from experiments.configs.common import make_config


def get_config(arg=None):
  return make_config(
      arg,
      **{"data.name": "heatmaps", "model.kind": "vae", "model.arch": "small",
         "model.latent_dim": 3, "train.epochs": 20})
