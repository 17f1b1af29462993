"""VAE on scikit-learn's bundled 8x8 digits (real data, offline).

  python -m experiments.train --config=experiments/configs/vae_digits.py \
      --workdir=/tmp/vae_digits
"""

from experiments.configs.common import make_config


def get_config(arg=None):
  return make_config(
      arg,
      **{"data.name": "digits", "model.kind": "vae", "model.arch": "small",
         "model.latent_dim": 2, "train.epochs": 100,
         "train.lr_schedule": "constant", "eval.batch_size": 360})
