"""The train command: a misspelled override fails without a traceback."""


def test_cli_reports_a_misspelled_override_without_a_traceback(tmp_path,
                                                                run_python):
  result = run_python(
      "-m", "experiments.train",
      "--config=experiments/configs/vae_digits.py:smoke",
      "--config.model.latnt_dim=3", f"--workdir={tmp_path}")
  assert result.returncode != 0
  assert "latnt_dim" in result.stderr and "Traceback" not in result.stderr
