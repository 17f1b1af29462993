"""The Keras MLP-autoencoder notebook's model (784-500-300-2, MSE, Adam 1e-3,
batch 50, 10 epochs) on MNIST digits 1, 5 and 6.

  python -m experiments.train --config=experiments/configs/ae_mnist.py \
      --workdir=/tmp/ae_mnist
  # a conv AE on all digits: --config=experiments/configs/vae_mnist.py:kind=ae
"""

from experiments.configs.common import make_config


def get_config(arg=None):
  return make_config(
      arg,
      **{"data.name": "mnist", "data.classes": (1, 5, 6), "model.kind": "ae",
         "model.arch": "keras_mlp", "model.latent_dim": 2,
         "loss.likelihood": "gaussian", "train.epochs": 10,
         "train.batch_size": 50, "train.lr_schedule": "constant",
         "train.steps_per_call": 100, "train.log_every_steps": 100,
         "eval.batch_size": 1000})
