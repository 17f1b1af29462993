"""Parametric UMAP of seed 002's density heatmaps (generated, offline).

  python -m experiments.train --config=experiments/configs/umap_heatmaps.py \
      --workdir=/tmp/umap_heatmaps
"""

from experiments.configs.common_umap import make_umap_config


def get_config(arg=None):
  # Continuous targets in (0, 1): the decoder's Bernoulli likelihood, as the
  # heatmap VAEs use.
  return make_umap_config(arg, **{"data.name": "heatmaps",
                                  "eval.batch_size": 500})
