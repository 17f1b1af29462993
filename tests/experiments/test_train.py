"""The train command: every user error is one line on stderr (exit 2 for
usage errors, 1 for failures), and fields with a None default can be set."""

import importlib
import os
import pkgutil

import pytest

from experiments import configs


def test_user_errors_are_one_line_with_their_exit_code(tmp_path, run_python):
  digits = "--config=experiments/configs/vae_digits.py"
  broken = tmp_path / "broken.py"
  broken.write_text("def get_config(:\n")
  afile = tmp_path / "afile"
  afile.write_text("")
  work = f"--workdir={tmp_path / 'run'}"
  cases = [  # (argv, exit code, text in the error line)
      (["--config=nowhere.py", work], 2, "no config file 'nowhere.py'"),
      ([f"--config={broken}", work], 2, "invalid syntax"),
      ([f"{digits}:smoke,latnt=3", work], 2, "Unknown config argument "
       "'latnt'"),
      ([f"{digits}:smoke", "--config.model.latnt_dim=3", work], 2,
       "latnt_dim"),
      ([f"{digits}:smoke", "--workdir"], 2, "--workdir"),
      ([f"{digits}:smoke", f"--workdir={afile}"], 1, "is a file"),
      ([f"{digits}:smoke", "--config.train.learning_rate=nan", work], 1,
       "train.learning_rate=nan: must be a finite number"),
      # A None-default field set on the command line (then refused by value).
      ([digits, "--config.data.max_train=0", work], 1,
       "data.max_train=0: must be a number >= 1"),
      ([f"{digits}:smoke", "--config.data.max_train=0", work,
        "--verbose_errors"], 1, "data.max_train=0"),
  ]
  for argv, code, text in cases:
    result = run_python("-m", "experiments.train", *argv)
    stderr = result.stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == code, (argv, stderr)
    assert len(lines) == 1 and text in lines[0], (argv, stderr)
    assert ("Traceback" in stderr) == ("--verbose_errors" in argv), argv
  assert not os.path.exists(tmp_path / "run")  # refused runs leave nothing


def test_every_none_default_is_a_typed_placeholder():
  """ml_collections refuses `--config.<key>=...` on a plain None field."""

  def untyped(section, prefix=""):
    for key, value in section.items():
      if hasattr(value, "items"):
        yield from untyped(value, f"{prefix}{key}.")
      elif value is None and section.get_type(key) is type(None):
        yield prefix + key

  names = [m.name for m in pkgutil.iter_modules(configs.__path__)
           if not m.name.startswith("common")]
  assert "vae_heatmaps" in names
  for name in names:
    config = importlib.import_module(f"experiments.configs.{name}").get_config()
    assert list(untyped(config)) == [], name


@pytest.mark.parametrize("text", ["inf", "nan"])
def test_nonfinite_shortcut_values_parse_and_are_refused_later(text):
  from experiments.configs import vae_digits  # pylint: disable=g-import-not-at-top
  from latent_jax.train.config_checks import validate_config
  with pytest.raises(ValueError, match="train.learning_rate"):
    validate_config(vae_digits.get_config(f"smoke,learning_rate={text}"))
