"""Conv VAE on MNIST, the PyTorch conv-VAE MNIST notebook's setting.

MNIST comes through a tensorflow-datasets download.

  python -m experiments.train --config=experiments/configs/vae_mnist.py \
      --workdir=/tmp/vae_mnist
  # Fashion-MNIST: --config.data.name=fashion_mnist ; a latent sweep point:
  #   --config=experiments/configs/vae_mnist.py:latent_dim=16,kl_weight=0.5
"""

from experiments.configs.common import make_config


def get_config(arg=None):
  return make_config(
      arg,
      **{"data.name": "mnist", "model.kind": "vae", "model.arch": "small",
         "model.latent_dim": 16, "train.epochs": 20, "train.batch_size": 128,
         "train.lr_schedule": "cosine", "train.steps_per_call": 100,
         "train.log_every_steps": 100, "eval.batch_size": 1000})
