"""Parametric UMAP of scikit-learn's 8x8 digits (real data, offline, ~1 min).

  python -m experiments.train --config=experiments/configs/umap_digits.py \
      --workdir=/tmp/umap_digits
  # other settings: --config=experiments/configs/umap_digits.py:n_neighbors=30
"""

from experiments.configs.common_umap import make_umap_config


def get_config(arg=None):
  return make_umap_config(arg, **{"data.name": "digits",
                                  "eval.batch_size": 360})
