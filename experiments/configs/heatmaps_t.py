"""VAE on the Keras VAE-vs-AE heatmap notebook's Student-t heatmaps.

Degrees of freedom (2 or 200) are a fourth label.

  python -m experiments.train --config=experiments/configs/heatmaps_t.py \
      --workdir=/tmp/vae_heatmaps_t
  # AE: add :kind=ae
"""

from experiments.configs.common import make_config


def get_config(arg=None):
  return make_config(
      arg,
      **{"data.name": "heatmaps_t", "model.kind": "vae", "model.arch": "small",
         "model.latent_dim": 3, "train.epochs": 20})
