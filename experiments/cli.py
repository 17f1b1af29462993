"""Flag parsing and error reporting shared by the entry points.

Every user error is one line on stderr, `error: ...`: exit code 2 for a
usage error (a bad flag, a missing or broken config file, an unknown config
key or override), 1 for a failure of the command (`USER_ERRORS`: a bad
config value, a refused resume, a busy or unwritable workdir, an
unavailable dataset, a non-finite loss). `--verbose_errors` prints the
traceback too; any other exception is a bug and keeps its traceback.
"""

import logging
import os
import re
import sys
import traceback

from absl import flags
from absl import logging as absl_logging
from ml_collections.config_flags.config_flags import ConfigFileFlagParser

from latent_jax.data import DatasetUnavailableError
from latent_jax.train.workdir_lock import WorkdirBusyError

USER_ERRORS = (ValueError, FileNotFoundError, FloatingPointError,
               DatasetUnavailableError, WorkdirBusyError)
USAGE_EXIT, FAILURE_EXIT = 2, 1
# One definition for the entry points that write into a folder of their own
# (compare: the comparison; benchmark device: the report): absl refuses a
# flag defined twice in one process.
OUT = flags.DEFINE_string("out", None, "Output directory.")
_VERBOSE_ERRORS = flags.DEFINE_bool(
    "verbose_errors", False, "Also print the traceback of a user error (bad "
    "flag, config value or workdir, refused resume, missing dataset).")


def one_line(error: BaseException | str) -> str:
  """An error's message on one line; of a message that embeds a traceback
  (ml_collections' config-file errors), its last line."""
  text = str(error)
  if "Traceback (most recent call last)" in text:
    text = [line for line in text.splitlines() if line.strip()][-1]
    text = re.sub(r"^\w+(Error|Exception): ", "", text)
  text = text.replace("\\n", " ").replace("\\'", "'").strip("'\" ")
  return " ".join(text.split())


def exit_with_error(error: BaseException, code: int = FAILURE_EXIT) -> None:
  """Prints `error: <one line>` (and the traceback with --verbose_errors),
  then exits with `code`."""
  verbose = (_VERBOSE_ERRORS.value if flags.FLAGS.is_parsed()
             else "--verbose_errors" in sys.argv)
  if verbose:
    traceback.print_exception(error)
  print(f"error: {one_line(error)}", file=sys.stderr)
  sys.exit(code)


def _is_config_flag(flag: flags.Flag) -> bool:
  return isinstance(flag.parser, ConfigFileFlagParser)


def _missing_config_file(argv: list[str]) -> str | None:
  """`--<flag>=<path>[:args]: no config file` for a config-file flag whose
  file does not exist (ml_collections reports a generic load failure)."""
  for arg in argv[1:]:
    name, sep, value = arg.lstrip("-").partition("=")
    path = value.split(":", 1)[0]
    if (sep and name in flags.FLAGS and _is_config_flag(flags.FLAGS[name])
        and not os.path.isfile(path)):
      return f"--{name}={value}: no config file {path!r}"
  return None


class _UsageError(Exception):
  """A flag or config-file error: one line, exit code 2."""


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, but any error while parsing (a bad flag, a missing or
  broken config file, a misspelled `--config.<key>` or `:` argument, a
  value of the wrong type) exits with one line and code 2.

  ml_collections raises AttributeError/KeyError/TypeError/SyntaxError/
  OSError, not absl's flag errors, and defers a config file's load error to
  its first use; a traceback would bury what was wrong.
  """
  try:
    remaining = flags.FLAGS(argv)
    for name in list(flags.FLAGS):
      if _is_config_flag(flags.FLAGS[name]):
        getattr(flags.FLAGS[name].value, "to_dict")  # a deferred load error
    return remaining
  except Exception as error:  # pylint: disable=broad-except
    message = _missing_config_file(argv) or one_line(error)
    usage = _UsageError(f"invalid flag or config: {message} (run with "
                        "--helpshort to see the flags)")
    usage.__cause__ = error
    exit_with_error(usage, USAGE_EXIT)
    raise  # not reached: exit_with_error exits


class _LibraryInfoFilter(logging.Filter):
  """Drops INFO lines from orbax / jax internals; warnings still show."""

  def filter(self, record: logging.LogRecord) -> bool:
    noisy = any(part in record.pathname for part in _NOISY_PATHS)
    return record.levelno >= logging.WARNING or not noisy


_NOISY_PATHS = ("/orbax/", "/jax/_src/", "/etils/")


def quiet_library_logs() -> None:
  """Keeps the progress lines readable (orbax logs every save at INFO)."""
  absl_logging.get_absl_handler().addFilter(_LibraryInfoFilter())
