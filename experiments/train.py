"""Train a VAE/AE or a parametric UMAP (or resume one): the run of its kind.

  python -m experiments.train --config=experiments/configs/vae_heatmaps.py \
      --workdir=/tmp/vae_heatmaps [--config.model.latent_dim=3 ...]

Running the same command again on the same workdir resumes from the latest
checkpoint; a finished run only re-evaluates. A command whose run-defining
settings differ from the workdir's `config.json` is refused; to continue
from a run with other settings, start a new workdir from its checkpoint:

  python -m experiments.train --config=... --workdir=/tmp/new \
      --init_from=/tmp/vae_heatmaps

User errors are one line (`error: ...`; exit 2 for bad flags or config
files, 1 for failures); `--verbose_errors` adds the traceback.
"""

import sys

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files

from absl import app, flags, logging
from ml_collections import config_flags

from experiments.cli import (USER_ERRORS, exit_with_error, parse_flags,
                             quiet_library_logs)

from latent_jax.runs import run_module
from latent_jax.train.runner import Preempted

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. experiments/configs/vae_heatmaps.py"
    "[:latent_dim=3,smoke].", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None,
                               "Run directory: checkpoints, metrics, figures.")
_INIT_FROM = flags.DEFINE_string(
    "init_from", None, "Workdir of another run: a new --workdir starts from "
    "its latest good checkpoint's parameters (fresh optimiser state, step "
    "0), with this command's settings.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  quiet_library_logs()
  try:
    config = _CONFIG.value
    run_module(config.model.kind).train_and_evaluate(
        config, _WORKDIR.value, init_from=_INIT_FROM.value)
  except Preempted as stop:
    logging.warning("%s", stop)
    sys.exit(143)  # 128 + SIGTERM, so schedulers see an interrupted run
  except USER_ERRORS as error:
    exit_with_error(error)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
