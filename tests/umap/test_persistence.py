"""Save and load: the loaded reducer transforms and inverts identically; a
save is atomic; every damaged or edited file fails to load, named."""

import json
import os
import shutil

import numpy as np
import pytest

from latent_jax import ParametricUMAP
from latent_jax.umap import persistence


def test_save_load_transform_identical(fitted_umap, saved_umap,
                                       digits_split, tmp_path):
  _, _, test, _ = digits_split
  loaded = ParametricUMAP.load(saved_umap)
  np.testing.assert_array_equal(loaded.transform(test),
                                fitted_umap.transform(test))
  points = fitted_umap.embedding_[:5]
  np.testing.assert_array_equal(loaded.inverse_transform(points),
                                fitted_umap.inverse_transform(points))
  assert loaded.get_params() == fitted_umap.get_params()
  assert loaded.n_features_in_ == fitted_umap.n_features_in_
  assert (loaded.graph_ != fitted_umap.graph_).nnz == 0
  fitted_umap.save(str(tmp_path / "lean"), include_training_data=False)
  lean = ParametricUMAP.load(str(tmp_path / "lean"))
  np.testing.assert_array_equal(lean.transform(test),
                                fitted_umap.transform(test))
  with pytest.raises(ValueError, match="saved without"):
    lean.transform(test, method="refine")
  with pytest.raises(ValueError, match="saved without"):
    lean.inverse_transform(points, method="interpolate")


def test_a_failed_save_leaves_the_previous_one_whole(
    fitted_umap, saved_umap, digits_split, tmp_path, monkeypatch):
  path = str(tmp_path / "model")
  shutil.copytree(saved_umap, path)
  lean = str(tmp_path / "lean")
  writes, original = [], np.save

  def failing_save(file, *args, **kwargs):
    writes.append(file)
    if len(writes) == 2:
      raise OSError("disk full")
    return original(file, *args, **kwargs)

  monkeypatch.setattr(np, "save", failing_save)
  for target in (path, lean):  # over an earlier save, and a new path
    writes.clear()
    with pytest.raises(OSError, match="disk full"):
      fitted_umap.save(target)
  monkeypatch.undo()
  assert sorted(os.listdir(tmp_path)) == ["model"]  # nothing half-written
  test = digits_split[2][:10]
  np.testing.assert_array_equal(ParametricUMAP.load(path).transform(test),
                                fitted_umap.transform(test))
  # A folder of other files is never replaced.
  other = tmp_path / "other"
  other.mkdir()
  (other / "notes.txt").write_text("keep")
  with pytest.raises(ValueError, match="not a model written by"):
    fitted_umap.save(str(other))
  assert (other / "notes.txt").read_text() == "keep"


def _edit_json(path, edit):
  meta_path = os.path.join(path, persistence.HYPERPARAMETERS_FILE)
  with open(meta_path) as file:
    meta = json.load(file)
  edit(meta)
  with open(meta_path, "w") as file:
    json.dump(meta, file)


def _truncate(path, file):
  full = os.path.join(path, file)
  with open(full, "r+b") as handle:
    handle.truncate(os.path.getsize(full) // 2)


def _largest_params_file(path):
  files = [os.path.join(root, name)
           for root, _, names in os.walk(os.path.join(path, "params"))
           for name in names]
  return os.path.relpath(max(files, key=os.path.getsize), path)


def _replace_embedding(path):
  np.save(os.path.join(path, "embedding.npy"),
          np.zeros((5, 2), np.float32))


FAULTS = {
    "edited hyperparameter": (
        lambda p: _edit_json(p, lambda m: m["hyperparameters"].update(
            n_neighbors=1)),
        r"hyperparameters.json: field hyperparameters: n_neighbors"),
    "unknown hyperparameter": (
        lambda p: _edit_json(p, lambda m: m["hyperparameters"].update(
            depth=3)),
        r"hyperparameters.json: .*Unknown hyperparameter.*depth"),
    "edited fitted scalar": (
        lambda p: _edit_json(p, lambda m: m["fitted"].update(a_="big")),
        r"hyperparameters.json: field fitted: a_"),
    "format version": (
        lambda p: _edit_json(p, lambda m: m.update(format_version=99)),
        r"hyperparameters.json: format_version is 99"),
    "truncated json": (
        lambda p: _truncate(p, persistence.HYPERPARAMETERS_FILE),
        r"hyperparameters.json: not valid JSON"),
    "missing npy": (
        lambda p: os.remove(os.path.join(p, "training_data.npy")),
        r"training_data.npy: missing"),
    "truncated npy": (
        lambda p: _truncate(p, "embedding.npy"),
        r"embedding.npy: unreadable"),
    "wrong shape npy": (_replace_embedding,
                        r"embedding.npy: shape \(5, 2\) .* implies shape "
                        r"\(1400, 2\)"),
    "truncated graph": (lambda p: _truncate(p, "graph.npz"),
                        r"graph.npz: unreadable"),
    "missing params": (
        lambda p: shutil.rmtree(os.path.join(p, "params")),
        r"params: missing"),
    "truncated params": (
        lambda p: _truncate(p, _largest_params_file(p)),
        r"params: cannot restore"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_load_names_the_damaged_file_and_field(saved_umap, tmp_path, fault):
  damage, message = FAULTS[fault]
  path = str(tmp_path / "model")
  shutil.copytree(saved_umap, path)
  damage(path)
  with pytest.raises(ValueError, match=message):
    ParametricUMAP.load(path)
