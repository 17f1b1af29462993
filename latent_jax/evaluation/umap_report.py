"""Evaluate a fitted parametric UMAP on held-out data: numbers + figures.

Takes a fitted reducer and arrays (no trainer, no config object); returns
the numbers, which the runs layer writes to its eval.json, and draws the
figures of `registry.UMAP_FIGURES`.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Sequence

import numpy as np

from latent_jax.evaluation import embedding_metrics
from latent_jax.evaluation.plot_utils import image_cmap
from latent_jax.evaluation.progress import phase
from latent_jax.evaluation.registry import (UMAP_FIGURES, UmapFigureInputs,
                                            check_figures, draw_figures)
from latent_jax.umap import validation


def evaluate_reducer(reducer, test_images: np.ndarray, *,
                     test_labels: np.ndarray | None = None,
                     label_names: Sequence[str] = (),
                     categorical: Sequence[bool] = (),
                     dataset_name: str = "", out_dir: str,
                     figures: Sequence[str] = (),
                     records: Sequence[dict[str, Any]] = ()
                     ) -> dict[str, float]:
  """Held-out embedding metrics and the selected figures.

  Args:
    reducer: a fitted `latent_jax.umap.ParametricUMAP`.
    test_images: [N, ...] held-out inputs shaped like the training data.
    test_labels: [N, L] or None; the first label (`label_names[0]`,
      `categorical[0]`) colours the figures, and a class label scores the
      kNN accuracy and silhouette.
    dataset_name: shown in the embedding figure's title.
    out_dir: where `<name>.png` of each figure goes.
    figures: names of `registry.UMAP_FIGURES`, drawn in this order (pass ()
      on all processes but one: every process computes the numbers).
    records: metrics.jsonl records, for the loss curves.

  Returns:
    dict with transform_sec, trustworthiness (+ knn_accuracy, silhouette
    with a class label), train_trustworthiness; with the training data kept
    refine_sec and the same scores prefixed `refined_` (umap-learn's kind
    of transform: the encoder's output refined against the training
    embedding, which shows what the encoder's generalisation costs); with a
    decoder inverse_mse; mean_image_mse (the error of predicting the mean
    training image, the scale inverse_mse is read against).
  """
  check_figures(figures, UMAP_FIGURES)
  if test_labels is None or not len(label_names):
    labels, label_name, is_class = None, "", True
  else:
    labels = np.asarray(test_labels)[:, 0]
    label_name, is_class = label_names[0], bool(categorical[0])
  scored = labels if is_class else None
  # The reducer's own checks: float32, finite, grey images gain a channel.
  images = validation.check_inputs(test_images, reducer.get_params())

  with phase(f"transform and scores of {len(images)} test points"):
    started = time.perf_counter()
    embedding = reducer.transform(images)
    summary = {"transform_sec": time.perf_counter() - started}
    summary.update(embedding_metrics.embedding_quality(images, embedding,
                                                       scored))
  with phase("training trustworthiness"):
    summary["train_trustworthiness"] = embedding_metrics.trustworthiness(
        reducer.training_data_, reducer.embedding_)
  if reducer.training_data_ is not None:
    with phase("refined transform and scores"):
      started = time.perf_counter()
      refined = reducer.transform(images, method="refine")
      summary["refine_sec"] = time.perf_counter() - started
      summary.update({f"refined_{name}": value for name, value in
                      embedding_metrics.embedding_quality(
                          images, refined, scored).items()})
  if reducer.has_decoder:
    with phase("inverse transform"), warnings.catch_warnings():
      warnings.simplefilter("ignore")  # test points outside the hull
      decoded = reducer.inverse_transform(embedding, method="decoder")
    summary["inverse_mse"] = float(np.mean((decoded - images) ** 2))
  summary["mean_image_mse"] = float(np.mean(
      (images - reducer.training_data_.mean(axis=0)) ** 2))

  draw_figures(UMAP_FIGURES, figures, UmapFigureInputs(
      embedding=embedding, invert=reducer.inverse_transform, records=records,
      labels=labels, label_name=label_name, categorical=is_class,
      title=f"{dataset_name}: test embedding ({len(embedding)})",
      cmap=image_cmap(images)), out_dir)
  return summary
