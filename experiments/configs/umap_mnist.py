"""Parametric UMAP of MNIST, the umap-learn inverse_transform tutorial's data.

MNIST comes through a tensorflow-datasets download.

  python -m experiments.train --config=experiments/configs/umap_mnist.py \
      --workdir=/tmp/umap_mnist
  # Fashion-MNIST: --config.data.name=fashion_mnist ; conv encoder:
  #   --config=experiments/configs/umap_mnist.py:encoder=conv
"""

from experiments.configs.common_umap import make_umap_config


def get_config(arg=None):
  # 60,000 points: minibatches of sampled edges (above full_batch_max_points).
  return make_umap_config(arg, **{"data.name": "mnist",
                                  "eval.batch_size": 1000,
                                  "umap.batch_size": 4096})
