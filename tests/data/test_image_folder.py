"""`image_folder`: class sub-folders read back against Pillow, resized and
converted, cached once (a changed file rebuilds), and the bad inputs."""

import os

import numpy as np
import pytest
from PIL import Image

from latent_jax import data
from latent_jax.data.dataset import train_test_split_indices


def _folder(root, sizes=((9, 7),) * 6, mode="RGB"):
  rng = np.random.default_rng(0)
  files = []
  for i, (width, height) in enumerate(sizes):
    label = ("cat", "dog")[i % 2]
    os.makedirs(root / label, exist_ok=True)
    pixels = rng.integers(0, 256, (height, width, 3), np.uint8)
    path = root / label / f"{i:02d}.png"
    Image.fromarray(pixels).convert(mode).save(path)
    files.append((path, i % 2))
  return sorted(files, key=lambda f: (f[1], str(f[0])))


def test_reads_classes_resizes_and_converts_like_pillow(tmp_path):
  files = _folder(tmp_path / "imgs")
  ds = data.load_dataset("image_folder", seed=1, path=str(tmp_path / "imgs"),
                         cache_dir=str(tmp_path / "cache"), image_size=(4, 5),
                         color="grayscale", test_fraction=0.5)
  train, _ = train_test_split_indices(6, 0.5, 1)
  assert ds.image_shape == (4, 5, 1) and ds.label_names == ("class",)
  for row, index in enumerate(train):
    path, label = files[index]
    expected = np.asarray(Image.open(path).convert("L").resize(
        (5, 4), Image.BILINEAR), np.float32) / 255
    np.testing.assert_array_equal(ds.train_images[row, ..., 0], expected)
    assert ds.train_labels[row, 0] == label
  rgb = data.load_dataset("image_folder", seed=1, path=str(tmp_path / "imgs"),
                          cache_dir=str(tmp_path / "cache"))
  assert rgb.image_shape == (7, 9, 3)  # stored size; RGB files stay RGB


def test_cached_once_and_rebuilt_when_a_file_changes(tmp_path):
  files = _folder(tmp_path / "imgs")
  cache = tmp_path / "cache"
  load = lambda: data.load_dataset("image_folder", seed=0, test_fraction=0.5,
                                   path=str(tmp_path / "imgs"),
                                   cache_dir=str(cache))
  first = load()
  assert len(os.listdir(cache)) == 1
  np.testing.assert_array_equal(load().train_images, first.train_images)
  assert len(os.listdir(cache)) == 1
  Image.new("RGB", (9, 7), (255, 255, 255)).save(files[0][0])
  os.utime(files[0][0], ns=(1, 1))  # a new mtime even on coarse clocks
  assert len({*os.listdir(cache)}) == 1 and load().num_train == 3
  assert len(os.listdir(cache)) == 2


def test_bad_folders(tmp_path):
  _folder(tmp_path / "mixed", sizes=((9, 7), (9, 7), (8, 8), (9, 7)))
  with pytest.raises(ValueError, match="mixed sizes.*data.image_size"):
    data.load_dataset("image_folder", seed=0, path=str(tmp_path / "mixed"),
                      cache_dir=str(tmp_path / "cache"))
  with pytest.raises(ValueError, match="no such folder.*data.path"):
    data.load_dataset("image_folder", seed=0, path=str(tmp_path / "nope"))
  os.makedirs(tmp_path / "empty")
  with pytest.raises(ValueError, match="no image files"):
    data.load_dataset("image_folder", seed=0, path=str(tmp_path / "empty"))
  with pytest.raises(ValueError, match="data.color"):
    data.load_dataset("image_folder", seed=0, path=str(tmp_path / "mixed"),
                      color="cmyk")
