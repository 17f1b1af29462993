"""Orbax checkpoints of the train state, with resume and corruption fallback.

One `CheckpointManager` per workdir (`<workdir>/checkpoints/<step>/`), each
checkpoint a composite of the state pytree (`StandardSave`) and a small JSON
of metadata. Restores go through an abstract target from `jax.eval_shape`.

A checkpoint that fails to restore is one of two things, told apart by the
shapes saved in its metadata:

- written by a different model (another latent_dim, optimiser, ...): the
  saved shapes differ from the target's; a ValueError says so, since no
  older checkpoint of the same workdir would fit either;
- corrupt (a truncated or damaged file; the shapes agree or cannot be read):
  it is reported (step and file), moved aside to `checkpoints/corrupt-<step>`
  (never deleted) and the next older checkpoint is tried, so one damaged
  file costs the steps since the previous checkpoint, not the run.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp
from absl import logging

from latent_jax.train import distributed

CHECKPOINTS_DIR = "checkpoints"
CORRUPT_PREFIX = "corrupt-"
# Orbax's JSON files inside a step folder: checked to name a corrupt file.
_JSON_FILES = ("_CHECKPOINT_METADATA", "_METADATA", "metadata", "process_0")


def _absolute(path: str) -> str:
  # Orbax wants absolute paths; leave remote URLs (gs://...) alone.
  return path if "://" in path else os.path.abspath(path)


class Restored(NamedTuple):
  """A checkpoint read back."""
  state: Any            # the pytree saved (shaped like the target)
  meta: dict[str, Any]  # the JSON saved beside it


def _shapes(tree: Any) -> list[tuple[tuple[int, ...], str]]:
  """Sorted (shape, dtype) of every array leaf: comparable across the
  NamedTuple target and the nested dicts orbax's metadata holds."""
  return sorted((tuple(leaf.shape), str(leaf.dtype))
                for leaf in jax.tree.leaves(tree) if hasattr(leaf, "shape"))


def _suspect_file(step_dir: str, error: Exception) -> str:
  """The file a restore error points at: one orbax JSON file that does not
  parse, else a path quoted in the error, else the step folder."""
  for root, _, files in os.walk(step_dir):
    for name in sorted(files):
      if name in _JSON_FILES:
        path = os.path.join(root, name)
        try:
          with open(path) as file:
            json.load(file)
        except (OSError, ValueError):
          return path
  named = [path for path in re.findall(r'"([^"]+)"', str(error))
           if path.startswith(step_dir) and os.path.isfile(path)]
  return named[-1] if named else step_dir


class Checkpointer:
  """Saves and restores `(state, meta)` under `<workdir>/checkpoints`.

  Args:
    workdir: the run directory.
    keep: how many of the latest checkpoints to keep.
    read_only: never create or move anything (reading another run's
      checkpoints, e.g. for `--init_from`).
  """

  def __init__(self, workdir: str, keep: int = 3, read_only: bool = False):
    self.directory = os.path.join(_absolute(workdir), CHECKPOINTS_DIR)
    self.read_only = read_only
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=not read_only, read_only=read_only),
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
    """The newest checkpoint that restores, or None if none does.

    Args:
      target: a pytree with the expected structure, shapes and dtypes
        (concrete arrays or `jax.ShapeDtypeStruct`s). None restores the raw
        arrays as saved (nested dicts), without checks.

    Corrupt checkpoints are moved aside on the way (module doc); raises
    ValueError if the newest one was written by a different model.
    """
    abstract = (None if target is None else
                jax.tree.map(ocp.utils.to_shape_dtype_struct, target))
    skipped = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract),
            meta=ocp.args.JsonRestore()))
      except Exception as error:  # pylint: disable=broad-except
        self._check_shapes(step, abstract, error)
        self._set_aside(step, error)
        skipped.append(step)
        continue
      if skipped:
        self._manager.reload()
      return Restored(restored["state"], dict(restored["meta"]))
    if skipped:
      self._manager.reload()
      logging.warning("No checkpoint in %s restores; starting from step 0.",
                      self.directory)
    return None

  def _check_shapes(self, step: int, abstract: Any, error: Exception) -> None:
    """Raises ValueError if checkpoint `step` holds other shapes than
    `abstract` (a different model, not a damaged file)."""
    if abstract is None:
      return
    try:
      saved = self._manager.item_metadata(step)["state"]
      saved = getattr(saved, "tree", saved)
    except Exception:  # pylint: disable=broad-except
      return  # unreadable metadata: a damaged file
    if saved is None:
      return
    saved_shapes, expected = _shapes(saved), _shapes(abstract)
    if saved_shapes != expected:
      differ = sorted(set(saved_shapes) ^ set(expected))[:4]
      raise ValueError(
          f"The checkpoint at step {step} in {self.directory} holds arrays of "
          f"other shapes than this run's model and optimiser ({len(saved_shapes)}"
          f" saved vs {len(expected)} expected; e.g. {differ}): it was written "
          "by a different config. Use a new --workdir (or --init_from=<that "
          "workdir> where shapes agree), or restore the original config."
      ) from error

  def _set_aside(self, step: int, error: Exception) -> None:
    """Reports checkpoint `step` as corrupt and moves it to corrupt-<step>."""
    step_dir = os.path.join(self.directory, str(step))
    where = _suspect_file(step_dir, error)
    detail = str(error).splitlines()[0][:300] if str(error) else repr(error)
    if self.read_only or not distributed.is_chief():
      logging.warning("The checkpoint at step %d is corrupt (%s: %s); "
                      "trying the previous one.", step, where, detail)
      return
    aside = os.path.join(self.directory, f"{CORRUPT_PREFIX}{step}")
    suffix = 0
    while os.path.exists(aside + (f".{suffix}" if suffix else "")):
      suffix += 1
    aside += f".{suffix}" if suffix else ""
    os.rename(step_dir, aside)
    logging.warning("The checkpoint at step %d is corrupt (%s: %s); moved it "
                    "to %s and trying the previous one.", step, where, detail,
                    aside)

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def restore_from_run(workdir: str, target: Any) -> Restored:
  """The newest good checkpoint of another run, shaped like `target`, read
  without touching that workdir (for `--init_from`).

  Raises FileNotFoundError if it has none, ValueError if its shapes differ.
  """
  if not os.path.isdir(os.path.join(workdir, CHECKPOINTS_DIR)):
    raise FileNotFoundError(
        f"--init_from={workdir} has no {CHECKPOINTS_DIR}/: give the --workdir "
        "of a training run that saved a checkpoint.")
  checkpointer = Checkpointer(workdir, read_only=True)
  try:
    restored = checkpointer.restore_latest(target)
  finally:
    checkpointer.close()
  if restored is None:
    raise FileNotFoundError(f"--init_from={workdir}: no checkpoint in "
                            f"{checkpointer.directory} restores.")
  return restored
