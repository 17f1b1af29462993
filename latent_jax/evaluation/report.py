"""Evaluate a trained VAE/AE on its test split: summary numbers + figures.

Takes a model, arrays and plain settings (no trainer, no config object), so
a notebook can call it on any model with `encode/decode/embed`. It returns
the numbers; the runs layer writes them, with the step, to eval.json.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from latent_jax import losses
from latent_jax.evaluation import exploration as exploration_lib
from latent_jax.evaluation.gaps import gap_distances, gap_summary
from latent_jax.evaluation.latent_classifier import latent_knn_scores
from latent_jax.evaluation.likelihood import active_units, make_iwae_evaluator
from latent_jax.evaluation.metrics import make_evaluator, summarize
from latent_jax.evaluation.plot_utils import image_cmap
from latent_jax.evaluation.progress import phase
from latent_jax.evaluation.registry import (EXPLORATION_FIGURES,
                                            IMAGE_FIGURES, RUN_FIGURES,
                                            OnFigure, RunFigureInputs,
                                            check_figures, draw_figures)


def _only(names: Sequence[str], on_figure: OnFigure | None
          ) -> OnFigure | None:
  """`on_figure` for the figures in `names` only."""
  if on_figure is None:
    return None

  def call(name, figure):
    if name in names:
      on_figure(name, figure)

  return call


def evaluate_and_plot(model, *, test_images: np.ndarray,
                      test_labels: np.ndarray, label_names: Sequence[str],
                      categorical: Sequence[bool], train_images: np.ndarray,
                      train_labels: np.ndarray, likelihood: str,
                      gaussian_scale: float, batch_size: int, key: jax.Array,
                      out_dir: str, figures: Sequence[str],
                      records: list[dict[str, Any]], num_images: int = 16,
                      iwae_samples: int = 0,
                      exploration: exploration_lib.ExplorationOptions | None
                      = None, on_figure: OnFigure | None = None
                      ) -> dict[str, float]:
  """Test-set metrics (means per image) and the selected figures.

  Args:
    model: a VAE or AE (anything with encode/decode/embed/loss_terms).
    test_images: [N, H, W, C] in [0, 1]; test_labels: [N, L].
    train_images, train_labels: [M, H, W, C] and [M, L]: the AE's sampling
      Gaussian and the latent kNN classifier are fitted on them.
    figures: names of `registry.RUN_FIGURES`, drawn in this order to
      `<out_dir>/figures/<name>.png` (unknown names fail before any work).
    records: metrics.jsonl records for the loss curves.
    iwae_samples: K of the IWAE bound for a VAE (0: skip it).
    exploration: points and dims of the exploration figures (default: chosen
      from the data); resolved before the slow metrics, so a bad option
      fails fast.
    on_figure: called as (name, Figure) with each drawn figure of
      `registry.IMAGE_FIGURES` (reconstructions, samples) before it is
      closed: the runs layer logs them to TensorBoard.

  Each phase (metrics, IWAE, gaps, kNN, each figure) logs its name and time.

  Returns:
    dict with recon, kl, neg_elbo, mse, frobenius (+ median, p95),
    keras_loss, recon_floor (Bernoulli), gap_distance_mean / _p95 (see
    latent_jax.evaluation.gaps); for a VAE active_units and
    iwae_nll; with a class label latent_knn_accuracy / _f1 / _k.
  """
  check_figures(figures, RUN_FIGURES)
  graphdef, params = nnx.split(model)
  evaluate = make_evaluator(graphdef, likelihood, gaussian_scale, batch_size)
  with phase(f"test metrics ({len(test_images)} images)"):
    per_example = evaluate(params, jnp.asarray(test_images), key)
    summary = summarize(per_example, model.latent_dim)

  embed = jax.jit(lambda p, x: nnx.merge(graphdef, p).embed(x))
  decode_jit = jax.jit(lambda p, z: losses.decoder_mean(
      likelihood, nnx.merge(graphdef, p).decode(z)))

  def decode(codes):
    return np.asarray(decode_jit(params, jnp.asarray(codes, jnp.float32)))

  def codes_of(images):
    return np.concatenate([np.asarray(embed(params, images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)])

  with phase("codes of the test and training images"):
    test_codes = codes_of(test_images)
    train_codes = codes_of(train_images[:10_000])
  is_vae = hasattr(model, "log_variance_head")
  if is_vae:
    # Prior N(0, I): traverse around the origin in prior standard deviations.
    sample_mean = np.zeros(model.latent_dim, np.float32)
    sample_std = np.ones(model.latent_dim, np.float32)
    sample_title = "Samples from the prior N(0, I)"
  else:
    # An AE has no prior: sample a Gaussian fitted to its training codes.
    sample_mean = train_codes.mean(0)
    sample_std = train_codes.std(0) + 1e-6
    sample_title = "Decoded samples of a Gaussian fitted to the AE's codes"
  context = exploration_lib.LatentContext(
      test_codes, np.asarray(test_labels).reshape(len(test_codes), -1),
      label_names, categorical, sample_mean, sample_std,
      "prior mean (origin)" if is_vae else "training codes' mean")
  plan = None
  if set(figures) & set(EXPLORATION_FIGURES):
    plan = exploration_lib.plan_exploration(exploration, context)
  if is_vae:
    summary["active_units"] = active_units(test_codes)
    if iwae_samples > 0:
      with phase(f"IWAE bound ({iwae_samples} samples)"):
        iwae = make_iwae_evaluator(graphdef, iwae_samples, likelihood,
                                   gaussian_scale)
        summary["iwae_nll"] = float(np.mean(np.asarray(iwae(
            params, jnp.asarray(test_images), jax.random.fold_in(key, 1)))))
  # The Keras VAE-vs-AE heatmap notebook's "gaps" of an AE's latent space,
  # as a number.
  with phase("latent gaps"):
    summary.update(gap_summary(gap_distances(decode, test_codes,
                                             train_images[:10_000])))
  class_columns = [i for i, flag in enumerate(categorical) if flag]
  if class_columns:  # e.g. the digit, or heatmaps_t's df (2 vs 200)
    column = class_columns[-1]
    with phase("latent kNN classifier"):
      summary.update(latent_knn_scores(
          train_codes, train_labels[:len(train_codes), column], test_codes,
          test_labels[:, column]))
  # Evenly spaced test images: splits keep the generating order, so this
  # spans the parameter grid instead of showing its first corner.
  shown = test_images[np.linspace(0, len(test_images) - 1,
                                  min(num_images, len(test_images))
                                  ).astype(int)]
  draw_figures(RUN_FIGURES, figures, RunFigureInputs(
      latent=context, decode=decode, embed=codes_of, shown=shown,
      records=records, frobenius=np.asarray(per_example["frobenius"]),
      plan=plan, sample_title=sample_title, num_images=num_images,
      cmap=image_cmap(test_images)), os.path.join(out_dir, "figures"),
      on_figure=_only(IMAGE_FIGURES, on_figure))
  return summary
