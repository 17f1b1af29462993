"""MLP VAE on binarized MNIST: the test log-likelihood benchmark.

Data: `tfds:binarized_mnist`, the fixed binarization of Larochelle & Murray
(2011): its official train (50,000) and test (10,000) splits; the
validation split is unused.
Model: the `mlp500` preset, 784-500-500-latent 40 each way (ReLU here),
latent 40 as in Rezende & Mohamed (2015, Table 1: VAE 89.9 nats), the
number pythae reproduces at 89.78 nats; pythae's IWAE (k=50) reaches 86.82
(literature 87.1). Bernoulli likelihood. `eval.iwae_samples=5000`: the
test NLL is the importance-sampled bound with K = 5,000 (decoded in chunks,
latent_jax/evaluation/likelihood.py), reported as `iwae_nll` beside
`neg_elbo` in eval.json. The numbers compare training budgets and activations
only loosely; docs/benchmarks.md says where the run was measured.

  python -m experiments.train \\
      --config=experiments/configs/vae_binarized_mnist.py \\
      --workdir=/tmp/vae_binarized_mnist
  # prepared data elsewhere: --config.data.data_dir=DIR (see docs/data.md)
"""

from experiments.configs.common import make_config


def get_config(arg=None):
  return make_config(
      arg,
      **{"data.name": "tfds:binarized_mnist", "model.kind": "vae",
         "model.arch": "mlp500", "model.latent_dim": 40,
         "loss.likelihood": "bernoulli", "train.epochs": 200,
         "train.batch_size": 100, "train.learning_rate": 1e-3,
         "train.lr_schedule": "cosine", "train.steps_per_call": 500,
         "train.log_every_steps": 500, "train.checkpoint_every_steps": 5000,
         "eval.batch_size": 1000, "eval.iwae_samples": 5000,
         "eval.figures": "loss_curves,reconstructions,samples"})
