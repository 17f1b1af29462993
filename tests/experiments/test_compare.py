"""Comparing runs: a VAE and an AE side by side; a PCA baseline for a 2-D
run."""

import os

import numpy as np
import pytest
from sklearn.decomposition import PCA

from experiments.compare import compare
from experiments.configs import ae_heatmaps
from latent_jax.runs import vae as vae_run


def test_compare_two_runs(vae_heatmaps_run, tmp_path, smoke_config,
                          heatmap_cache):
  _, vae_dir, vae_summary = vae_heatmaps_run
  ae_dir = str(tmp_path / "ae")
  # compare() reads eval.json's numbers and draws its own figure.
  vae_run.train_and_evaluate(
      smoke_config(ae_heatmaps, **{"data.cache_dir": heatmap_cache,
                                   "eval.figures": "loss_curves"}), ae_dir)
  out = str(tmp_path / "compare")
  rows = compare([vae_dir, ae_dir], out, grid=3)
  assert [row["kind"] for row in rows] == ["vae", "ae"]
  assert rows[0]["neg_elbo"] == pytest.approx(vae_summary["neg_elbo"])
  with open(os.path.join(out, "compare.csv")) as file:
    header = file.readline()
  assert "gap_distance_mean" in header and "neg_elbo" in header
  assert "| gap_distance_mean |" in open(os.path.join(out, "compare.md")).read()
  assert os.path.getsize(os.path.join(out, "compare.png")) > 20_000


def test_compare_adds_a_pca_baseline_for_a_2d_run(vae_digits_run, tmp_path):
  out = str(tmp_path / "compare")
  rows = compare([vae_digits_run], out, grid=3)
  assert [row["kind"] for row in rows] == ["vae", "pca"]
  _, dataset, _, _ = vae_run.restore_run(vae_digits_run)
  train = dataset.train_images.reshape(len(dataset.train_images), -1)
  test = dataset.test_images.reshape(len(dataset.test_images), -1)
  reference = PCA(n_components=2).fit(train)
  errors = np.linalg.norm(
      reference.inverse_transform(reference.transform(test)) - test, axis=1)
  assert rows[1]["frobenius"] == pytest.approx(errors.mean(), rel=1e-6)
  assert rows[1]["frobenius_p95"] == pytest.approx(
      np.percentile(errors, 95), rel=1e-6)
  assert "pca_2d" in open(os.path.join(out, "compare.csv")).read()
  assert os.path.getsize(os.path.join(out, "compare.png")) > 20_000
  assert len(compare([vae_digits_run], out, grid=3, pca_baseline=False)) == 1
