"""Progress of an evaluation: each phase's name and time, through absl
logging (what the runs log with), so a long evaluation is not silent.

  with phase("IWAE bound (100 samples)"):
    ...

logs "Evaluating: IWAE bound (100 samples) ..." when it starts and
"... done in 12.3 s" when it ends (or "failed after" on an exception).
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from absl import logging


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
  """Logs `name` at the start and its wall time at the end of the block."""
  logging.info("Evaluating: %s ...", name)
  started = time.perf_counter()
  try:
    yield
  except BaseException:
    logging.info("Evaluating: %s failed after %.1f s.", name,
                 time.perf_counter() - started)
    raise
  logging.info("Evaluating: %s done in %.1f s.", name,
               time.perf_counter() - started)
