"""Evaluate a run: restore its latest checkpoint, write eval.json + figures.

  python -m experiments.evaluate --workdir=/tmp/vae_heatmaps \
      [--figures=reconstructions,latent_codes]
"""

import sys

from absl import app, flags, logging

from experiments.cli import parse_flags, quiet_library_logs

from latent_jax.train.loop import evaluate_workdir

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory of a training "
                               "run (holds config.json and checkpoints/).")
_FIGURES = flags.DEFINE_string(
    "figures", None, "Comma-separated figure names (default: the run's "
    "eval.figures): loss_curves, reconstructions, samples, latent_codes, "
    "traversals.")
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  quiet_library_logs()
  try:
    evaluate_workdir(_WORKDIR.value, _FIGURES.value)
  except (ValueError, FileNotFoundError) as error:
    logging.error("%s", error)
    sys.exit(f"error: {error}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
