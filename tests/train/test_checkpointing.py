"""Checkpoints: a corrupt one is set aside and the previous one restores; a
different model's is called a config change; another run's is read only."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from latent_jax.train import checkpointing
from latent_jax.train.checkpointing import Checkpointer


def _state(value, width=4):
  return {"w": jnp.full((3, width), value, jnp.float32),
          "b": {"c": jnp.arange(5, dtype=jnp.float32) * value}}


@pytest.fixture
def two_checkpoints(tmp_path):
  """A workdir with checkpoints 8 (values 1) and 16 (values 2)."""
  checkpointer = Checkpointer(str(tmp_path))
  checkpointer.save(8, _state(1.0), {"step": 8})
  checkpointer.save(16, _state(2.0), {"step": 16})
  checkpointer.close()
  return tmp_path


def _truncate_largest(directory):
  """Halves the largest array-data file (orbax's `state/d/`)."""
  files = [os.path.join(directory, name) for name in os.listdir(directory)]
  largest = max(files, key=os.path.getsize)
  with open(largest, "r+b") as file:
    file.truncate(os.path.getsize(largest) // 2)
  return largest


@pytest.mark.parametrize("damaged", ["data", "metadata"])
def test_a_corrupt_checkpoint_is_moved_aside_and_the_previous_restores(
    two_checkpoints, caplog, damaged):
  step_dir = two_checkpoints / "checkpoints" / "16"
  if damaged == "data":
    name = _truncate_largest(step_dir / "state" / "d")
  else:
    name = str(step_dir / "state" / "_METADATA")
    with open(name, "r+b") as file:
      file.truncate(20)
  checkpointer = Checkpointer(str(two_checkpoints))
  state, meta = checkpointer.restore_latest(_state(0.0))
  assert meta == {"step": 8}
  np.testing.assert_array_equal(state["w"], np.ones((3, 4)))
  assert "step 16 is corrupt" in caplog.text and name in caplog.text
  assert sorted(os.listdir(two_checkpoints / "checkpoints")) == [
      "8", "corrupt-16"]  # kept, never deleted
  checkpointer.save(16, _state(3.0), {"step": 16})  # the step saves again
  checkpointer.close()
  assert Checkpointer(str(two_checkpoints)).latest_step() == 16


def test_other_shapes_are_a_config_change_not_a_corruption(two_checkpoints):
  with pytest.raises(ValueError, match=r"step 16 .* other shapes.*--workdir"):
    Checkpointer(str(two_checkpoints)).restore_latest(_state(0.0, width=5))
  assert sorted(os.listdir(two_checkpoints / "checkpoints")) == ["16", "8"]


def test_restore_from_run_reads_without_writing(two_checkpoints, tmp_path):
  before = sorted(os.walk(two_checkpoints))
  restored = checkpointing.restore_from_run(str(two_checkpoints), _state(0.0))
  assert restored.meta == {"step": 16}
  assert sorted(os.walk(two_checkpoints)) == before
  with pytest.raises(FileNotFoundError, match="--init_from=.*no checkpoints"):
    checkpointing.restore_from_run(str(tmp_path / "none"), _state(0.0))
