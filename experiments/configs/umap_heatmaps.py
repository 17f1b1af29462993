"""Parametric UMAP of the Keras VAE-vs-AE heatmap notebook's heatmaps.

The heatmaps are generated locally, so this runs offline.

  python -m experiments.train --config=experiments/configs/umap_heatmaps.py \
      --workdir=/tmp/umap_heatmaps
"""

from experiments.configs.common_umap import make_umap_config


def get_config(arg=None):
  # Continuous targets in (0, 1): the decoder's Bernoulli likelihood, as the
  # heatmap VAEs use.
  return make_umap_config(arg, **{"data.name": "heatmaps",
                                  "eval.batch_size": 500})
