"""Orbax checkpoints of the train state, with resume.

One `CheckpointManager` per workdir (`<workdir>/checkpoints/<step>/`), each
checkpoint a composite of the state pytree (`StandardSave`) and a small JSON
of metadata. Restores go through an abstract target from `jax.eval_shape`,
so a checkpoint written by a different model (e.g. another latent_dim) fails
with a clear error instead of loading mismatched arrays.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp


def _absolute(path: str) -> str:
  # Orbax wants absolute paths; leave remote URLs (gs://...) alone.
  return path if "://" in path else os.path.abspath(path)


class Restored(NamedTuple):
  """A checkpoint read back."""
  state: Any            # the pytree saved (shaped like the target)
  meta: dict[str, Any]  # the JSON saved beside it


class Checkpointer:
  """Saves and restores `(state, meta)` under `<workdir>/checkpoints`.

  Args:
    workdir: the run directory.
    keep: how many of the latest checkpoints to keep.
  """

  def __init__(self, workdir: str, keep: int = 3):
    self.directory = os.path.join(_absolute(workdir), "checkpoints")
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
    """Saves asynchronously; arrays are copied off the device before return."""
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        force=True)

  def restore_latest(self, target: Any | None = None
                     ) -> Restored | None:
    """The latest checkpoint, or None if there is none.

    Args:
      target: a pytree with the expected structure, shapes and dtypes
        (concrete arrays or `jax.ShapeDtypeStruct`s). None restores the raw
        arrays as saved (nested dicts), without checks.
    """
    step = self.latest_step()
    if step is None:
      return None
    abstract = (None if target is None else
                jax.tree.map(ocp.utils.to_shape_dtype_struct, target))
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract),
          meta=ocp.args.JsonRestore()))
    except (ValueError, KeyError, TypeError) as error:
      raise ValueError(
          f"The checkpoint at step {step} in {self.directory} does not match "
          "this run's model or optimiser (did the config change?). Use a new "
          f"--workdir, or restore the original config. Details: {error}"
      ) from error
    return Restored(restored["state"], dict(restored["meta"]))

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
