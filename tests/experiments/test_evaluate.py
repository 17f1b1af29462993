"""The evaluate command: bad points fail before anything is loaded."""


def test_evaluate_cli_rejects_bad_points_before_loading_anything(run_python):
  def evaluate(*flags):
    return run_python("-m", "experiments.evaluate", "--workdir=/nonexistent",
                      *flags)

  result = evaluate("--trajectory_start=1,a", "--rotation_plane=0,1")
  assert result.returncode != 0
  assert "--trajectory_start='1,a': 'a' is not a number" in result.stderr
  assert "Traceback" not in result.stderr
  result = evaluate("--rotation_plane=3")
  assert result.returncode != 0
  assert "--rotation_plane='3': give two distinct latent dims" in (
      result.stderr)
