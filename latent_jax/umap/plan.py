"""How a Parametric UMAP fit is sized: pure functions of settings and data.

Each rule takes the estimator's hyperparameters (a read-only mapping of
`ParametricUMAP.get_params()`) and the data's shape, so a fit's sizes are
known, and its programs can compile, before the kNN graph exists.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple

import numpy as np
import optax

from latent_jax.models.presets import PRESETS
from latent_jax.umap.projection import InputProjection, project

DEFAULT_UMAP_STEPS = 1000
# Full-batch mode (every point embedded each step): a budget of network work,
# in points embedded, spread over [MIN, MAX] steps. As umap-learn gives small
# data more epochs, small data gets more (cheaper) steps; past MAX, quality
# no longer rises with steps (docs/benchmarks.md).
FULL_BATCH_POINT_BUDGET = 2_250_000
FULL_BATCH_STEPS = (450, 1200)
# Regression onto the layout converges in a bounded number of steps however
# many points there are.
MAX_INIT_STEPS = 2000
# MLP encoders with at most this many inputs train at the larger default
# learning rate: the first layer's many inputs amplify each step.
NARROW_INPUT_FEATURES = 100
# Adam's moment decays, shorter than optax's: a fit is a few hundred to two
# thousand steps, and the sampled loss's gradients keep changing scale as
# the layout forms (docs/benchmarks.md compares the choices).
ADAM_B1, ADAM_B2 = 0.7, 0.95
# Rows of the input-noise bank (sampling.noise_bank); random signs double it.
NOISE_BANK_SIZE = 4096
ENCODER_ALIASES = {"mlp": "umap_deep", "conv": "small"}

Hyperparameters = Mapping[str, Any]


class TrainingPlan(NamedTuple):
  """How many steps each phase takes."""
  layout_steps: int   # non-parametric layout (not network steps)
  init_steps: int     # network regression onto the layout
  umap_steps: int     # network trained with the cross-entropy

  @property
  def total_steps(self) -> int:
    """Network steps (the layout runs before them, in one device call)."""
    return self.init_steps + self.umap_steps


def preset(hp: Hyperparameters) -> str:
  """The models preset of `hp["encoder"]` (aliases resolved)."""
  name = ENCODER_ALIASES.get(hp["encoder"], hp["encoder"])
  if name not in PRESETS:
    raise ValueError(f"Unknown encoder {hp['encoder']!r}: use 'mlp', 'conv' "
                     f"or a preset of latent_jax.models.PRESETS "
                     f"({sorted(PRESETS)}).")
  return name


def family(hp: Hyperparameters) -> str:
  """"mlp" or "conv"."""
  return PRESETS[preset(hp)]["family"]


def has_decoder(hp: Hyperparameters) -> bool:
  return bool(hp["decoder"] or hp["parametric_reconstruction"])


def full_batch(hp: Hyperparameters, num_points: int) -> bool:
  """Whether each step embeds every point (small data)."""
  return num_points <= hp["full_batch_max_points"]


def default_umap_steps(hp: Hyperparameters, num_points: int) -> int:
  if not full_batch(hp, num_points) or family(hp) != "mlp":
    # Minibatches, or conv encoders (a conv pass over every point costs far
    # more per step).
    return DEFAULT_UMAP_STEPS
  return int(np.clip(round(FULL_BATCH_POINT_BUDGET / num_points),
                     *FULL_BATCH_STEPS))


def init_batch_size(hp: Hyperparameters, num_points: int) -> int:
  return min(hp["init_batch_size"], num_points)


def layout_batch_size(num_points: int) -> int:
  """About one update per point per step; bounded so steps stay cheap."""
  return int(np.clip(num_points, 4096, 65536))


def layout_steps(hp: Hyperparameters, num_points: int, num_edges: int) -> int:
  return (math.ceil(hp["layout_epochs"] * num_edges
                    / layout_batch_size(num_points))
          if hp["layout_init"] else 0)


def plan(hp: Hyperparameters, num_points: int, num_edges: int | None,
         has_targets: bool = True) -> TrainingPlan | None:
  """Steps per phase.

  num_edges None (graph not built yet): the plan if it does not depend on
  the edge count (full batch: one step per epoch), else None; its
  layout_steps are then 0 until the graph is known. has_targets False:
  no init phase (nothing to regress onto).
  """
  if full_batch(hp, num_points):
    # Each full-batch step scores every edge: one epoch.
    umap_steps = hp["n_epochs"] or default_umap_steps(hp, num_points)
  elif num_edges is None:
    return None
  else:
    # Given epochs, or the default steps as epochs within [1, 500].
    n_epochs = hp["n_epochs"] or int(np.clip(
        round(default_umap_steps(hp, num_points) * hp["batch_size"]
              / max(num_edges, 1)), 1, 500))
    umap_steps = math.ceil(n_epochs * num_edges / hp["batch_size"])
  has_targets = has_targets and (hp["layout_init"] or hp["spectral_init"])
  init_steps = (min(math.ceil(hp["init_epochs"] * num_points
                              / init_batch_size(hp, num_points)),
                    MAX_INIT_STEPS) if has_targets else 0)
  return TrainingPlan(layout_steps(hp, num_points, num_edges or 0),
                      init_steps, umap_steps)


def encoder_features(hp: Hyperparameters, input_shape: tuple[int, ...]
                     ) -> int | None:
  """Features after the PCA in front of an MLP encoder; None: no PCA.

  Only inputs wider than twice `pca_components` are projected: on narrower
  ones the saving is small and held-out quality drops.
  """
  num_features = math.prod(input_shape)
  if family(hp) != "mlp" or not 0 < 2 * hp["pca_components"] < num_features:
    return None
  return hp["pca_components"]


def learning_rate(hp: Hyperparameters, input_shape: tuple[int, ...]
                  ) -> float:
  """The given rate, else 4.5e-2 for MLPs with narrow inputs, else 1e-2."""
  if hp["learning_rate"] is not None:
    return float(hp["learning_rate"])
  features = encoder_features(hp, input_shape)
  if features is None and family(hp) == "mlp":
    features = math.prod(input_shape)
  narrow_mlp = features is not None and features <= NARROW_INPUT_FEATURES
  return 4.5e-2 if narrow_mlp else 1e-2


def make_optimizer(hp: Hyperparameters, rate: float, total_steps: int
                   ) -> optax.GradientTransformation:
  """Adam(W) with a linear decay to zero, after optional clipping.

  As UMAP's own SGD step size: large early steps find the layout, small
  late ones settle the local neighbourhoods.
  """
  schedule = optax.linear_schedule(rate, 0.0, max(total_steps, 1))
  betas = dict(b1=ADAM_B1, b2=ADAM_B2)
  optimizer = (optax.adamw(schedule, weight_decay=hp["weight_decay"], **betas)
               if hp["weight_decay"] > 0 else optax.adam(schedule, **betas))
  if hp["grad_clip_norm"] > 0:
    optimizer = optax.chain(optax.clip_by_global_norm(hp["grad_clip_norm"]),
                            optimizer)
  return optimizer


def reconstruction_likelihood(hp: Hyperparameters, array: np.ndarray) -> str:
  """The decoder's likelihood; "auto": Bernoulli when inputs lie in [0, 1]."""
  if hp["reconstruction_loss"] != "auto":
    return hp["reconstruction_loss"]
  inside = float(array.min()) >= 0.0 and float(array.max()) <= 1.0
  return "bernoulli" if inside else "gaussian"


def input_noise_std(hp: Hyperparameters, array: np.ndarray,
                    projection: InputProjection | None,
                    knn_indices: np.ndarray) -> float:
  """input_noise x the data's rms feature std, at most one kNN radius.

  - The rms feature std: the root of the mean per-feature variance. Noise
    isotropic in input space keeps this std per component after the PCA
    (orthonormal components).
  - The cap, the kNN radius per feature: the median distance to the
    n_neighbors-th neighbour, where the encoder sees the data, over the
    root of its width, so the noise vector is at most one kNN radius long.
  Wide data is bound by the first, narrow data by the cap; either rule alone
  failed one kind of data.
  """
  if hp["input_noise"] == 0:
    return 0.0
  flat = array.reshape(len(array), -1)
  feature_std = np.sqrt(np.mean(flat.var(axis=0, dtype=np.float64)))
  inputs = project(projection, flat)
  farthest = knn_indices[:, -1]
  radius = np.median(np.linalg.norm(inputs - inputs[farthest], axis=1))
  return float(min(hp["input_noise"] * feature_std,
                   radius / math.sqrt(inputs.shape[1])))
