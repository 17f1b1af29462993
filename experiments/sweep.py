"""Run a latent-dim x KL-weight x seed sweep; write summary.csv and figures.

  python -m experiments.sweep --config=experiments/configs/ablation.py \
      --workdir=/tmp/latent_jax/ablation [--config.train.epochs=5 ...]

Each entry of `sweep.latent_dims` is a resumable sub-run
`<workdir>/latent_<d>/` training every (KL weight, seed) member of
`config.ensemble` in one program; rerun the command to resume. Then
`<workdir>/summary.csv` (one row per member) and the sweep figures are
written from the finished sub-runs. With `--config.sweep.one_program=True`
the whole grid is one run, `<workdir>/one_program/` (one compiled program;
every member evaluated at its own latent size), with the same summary.

  --dry_run               print the per-dim train commands; run nothing
  --latent_dims=3,5       train only these dims (then summarise all finished)
  --latent_dim_index=i    train only the i-th dim (a SLURM array task id)
  --summary_only          train nothing; summarise the finished sub-runs
"""

import shlex

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from experiments.cli import (USER_ERRORS, exit_with_error, parse_flags,
                             quiet_library_logs)
from latent_jax.runs import sweep
from latent_jax.train import distributed
from latent_jax.train.runner import Preempted

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Sweep config, e.g. experiments/configs/ablation.py"
    "[:smoke].", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Sweep directory: one "
                               "latent_<d>/ sub-run per latent dim.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the commands that "
                             "would run, and nothing else.")
_LATENT_DIMS = flags.DEFINE_list("latent_dims", None, "Train only these "
                                 "entries of sweep.latent_dims.")
_LATENT_DIM_INDEX = flags.DEFINE_integer(
    "latent_dim_index", None, "Train only the entry with this index of "
    "sweep.latent_dims (e.g. $SLURM_ARRAY_TASK_ID).")
_SUMMARY_ONLY = flags.DEFINE_bool("summary_only", False, "Train nothing; "
                                  "write the summary of finished sub-runs.")
flags.mark_flags_as_required(["config", "workdir"])


def config_arguments(argv: list[str]) -> list[str]:
  """The `--config=...` and `--config.<field>=...` arguments of `argv`."""
  return [arg for arg in argv[1:]
          if arg.startswith("--config=") or arg.startswith("--config.")]


def dry_run_commands(config_args: list[str], workdir: str,
                     dims: list[int], all_dims: list[int],
                     one_program: bool = False) -> list[str]:
  """A comment, the train command of each dim in `dims` (one for all of
  them with `one_program`), then the summary command."""
  if one_program:
    commands = [f"# sweep.latent_dims={all_dims}: one program",
                shlex.join(["python", "-m", "experiments.train",
                            *config_args,
                            f"--config.model.latent_dim={max(all_dims)}",
                            f"--workdir={sweep.one_program_workdir(workdir)}"])]
    dims = []
  else:
    commands = [f"# sweep.latent_dims={all_dims}: {len(dims)} sub-run(s)"]
  for latent_dim in dims:
    commands.append(shlex.join(
        ["python", "-m", "experiments.train", *config_args,
         f"--config.model.latent_dim={latent_dim}",
         f"--workdir={sweep.sub_workdir(workdir, latent_dim)}"]))
  commands.append(shlex.join(
      ["python", "-m", "experiments.sweep", *config_args,
       f"--workdir={workdir}", "--summary_only"]))
  return commands


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  quiet_library_logs()
  try:
    config, workdir = _CONFIG.value, _WORKDIR.value
    all_dims = sweep.latent_dims(config)
    only = [int(d) for d in _LATENT_DIMS.value] if _LATENT_DIMS.value else None
    one_program = sweep.is_one_program(config)
    if one_program and (only or _LATENT_DIM_INDEX.value is not None):
      raise ValueError("--latent_dims / --latent_dim_index select sub-runs, "
                       "but sweep.one_program=True trains every dim in one "
                       "run: drop the flag or set "
                       "--config.sweep.one_program=False.")
    dims = () if _SUMMARY_ONLY.value else sweep.select_dims(
        all_dims, only, _LATENT_DIM_INDEX.value)
    if _DRY_RUN.value:
      for command in dry_run_commands(config_arguments(sys.argv), workdir,
                                      list(dims), list(all_dims),
                                      one_program):
        print(command)
      return
    distributed.initialize()  # before any computation; no-op on one host
    if dims:
      sweep.run_sweep(config, workdir, dims)
    # Restoring every sub-run for the figures is a one-process job.
    if jax.process_count() == 1:
      sweep.write_summary(workdir, all_dims, config.eval.num_images,
                          one_program)
    elif distributed.is_chief():
      logging.warning("Multi-host run: write the summary from one process "
                      "afterwards with --summary_only.")
  except Preempted as stop:
    logging.warning("%s", stop)
    sys.exit(143)
  except USER_ERRORS as error:
    exit_with_error(error)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
