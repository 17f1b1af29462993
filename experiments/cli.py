"""Flag parsing shared by the entry points: config errors as one clear line."""

import logging
import sys

from absl import flags
from absl import logging as absl_logging


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, but a bad config override exits with one message.

  ml_collections raises AttributeError/KeyError/TypeError (not absl's flag
  errors) for a misspelled `--config.<key>` or a value of the wrong type; a
  traceback would bury the key that was wrong.
  """
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError,
          ValueError) as error:
    message = str(error).replace("\\n", " ").replace("\\'", "'").strip("'\"")
    sys.exit(f"error: invalid flag or config override: {message}\n"
             f"Run with --helpshort to see the flags.")


class _LibraryInfoFilter(logging.Filter):
  """Drops INFO lines from orbax / jax internals; warnings still show."""

  def filter(self, record: logging.LogRecord) -> bool:
    noisy = any(part in record.pathname for part in _NOISY_PATHS)
    return record.levelno >= logging.WARNING or not noisy


_NOISY_PATHS = ("/orbax/", "/jax/_src/", "/etils/")


def quiet_library_logs() -> None:
  """Keeps the progress lines readable (orbax logs every save at INFO)."""
  absl_logging.get_absl_handler().addFilter(_LibraryInfoFilter())
