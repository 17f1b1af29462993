"""The sweep command: a dry run prints the commands a sweep would run."""

import os

from experiments.sweep import dry_run_commands


def test_dry_run_prints_one_train_command_per_latent_dim(tmp_path,
                                                         run_python):
  workdir = str(tmp_path / "ablation")
  result = run_python(
      "-m", "experiments.sweep",
      "--config=experiments/configs/ablation.py:smoke",
      "--config.train.epochs=3", f"--workdir={workdir}", "--dry_run")
  assert result.returncode == 0, result.stderr[-2000:]
  lines = result.stdout.strip().splitlines()
  assert lines[0].startswith("# sweep.latent_dims=[2, 3]")
  assert lines[1:] == [
      "python -m experiments.train "
      "--config=experiments/configs/ablation.py:smoke "
      f"--config.train.epochs=3 --config.model.latent_dim={d} "
      f"--workdir={workdir}/latent_{d}" for d in (2, 3)] + [
      "python -m experiments.sweep "
      "--config=experiments/configs/ablation.py:smoke "
      f"--config.train.epochs=3 --workdir={workdir} --summary_only"]
  assert not os.path.exists(workdir)  # a dry run writes nothing


def test_one_program_dry_run_is_one_train_command():
  # In process: the command list itself, not the CLI around it.
  args = ["--config=experiments/configs/ablation.py:smoke",
          "--config.sweep.one_program=True"]
  assert dry_run_commands(args, "/w", [2, 3], [2, 3], one_program=True) == [
      "# sweep.latent_dims=[2, 3]: one program",
      "python -m experiments.train " + " ".join(args)
      + " --config.model.latent_dim=3 --workdir=/w/one_program",
      "python -m experiments.sweep " + " ".join(args)
      + " --workdir=/w --summary_only"]
