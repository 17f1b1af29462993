"""Ablation: latent dim x KL weight x seed for the heatmap VAE.

A heatmap-VAE version of the PyTorch conv-VAE MNIST notebook's latent-dim
ablation, with KL weights and seeds added.

Each latent dim is one sub-run training all (KL weight, seed) members side
by side in one program; `summary.csv` and the sweep figures land in the
workdir:

  python -m experiments.sweep --config=experiments/configs/ablation.py \
      --workdir=/tmp/latent_jax/ablation

4 latent dims x 4 KL weights x 2 seeds, 10 epochs each. On an accelerator
this takes minutes; on a 2-core CPU each latent dim trains its 8 members
in about as long as 8 single runs (see the README). The PyTorch conv-VAE
MNIST notebook's grid of latent dims:

  python -m experiments.sweep --config=experiments/configs/ablation.py \
      --config.sweep.latent_dims='(3,4,5,9,10,15,20,32)' \
      --workdir=/tmp/latent_jax/ablation_pytorch_grid

`smoke` shrinks it to 2 latent dims x 2 KL weights x 2 seeds of a few steps
(under 3 minutes on a 2-core CPU):

  python -m experiments.sweep --config=experiments/configs/ablation.py:smoke \
      --workdir=/tmp/latent_jax/ablation_smoke

Every (latent dim, KL weight, seed) cell as a member of one program (one
ensemble at the largest latent dim, member i masked to its first d_i dims;
the same summary.csv and figures, in `<workdir>/one_program/`):

  python -m experiments.sweep --config=experiments/configs/ablation.py:smoke \
      --config.sweep.one_program=True --workdir=/tmp/latent_jax/ablation_one

Print the per-dim commands (e.g. to run them as separate jobs) without
running anything: add --dry_run. One latent dim's ensemble alone is an
ordinary training run:

  python -m experiments.train --config=experiments/configs/ablation.py \
      --config.model.latent_dim=5 --workdir=/tmp/latent_jax/ablation/latent_5
"""

from experiments.configs.common import make_config, parse_arg


def get_config(arg=None):
  smoke, _ = parse_arg(arg)
  grid = {
      "sweep.latent_dims": (2, 3) if smoke else (2, 3, 5, 10),
      "ensemble.kl_weights": (0.5, 1.0) if smoke else (0.25, 0.5, 1.0, 2.0),
      "ensemble.seeds": (0, 1),
  }
  return make_config(
      arg,
      **{"data.name": "heatmaps", "model.kind": "vae", "model.arch": "small",
         "train.epochs": 10,
         # Per-member figures: the quick ones; the sweep draws its own.
         "eval.figures": "loss_curves,reconstructions,latent_codes",
         **grid})
