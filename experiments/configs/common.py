"""Shared config pieces: defaults, the `get_config(arg)` string, `smoke`.

Each experiment config file calls `make_config(arg, **experiment_defaults)`.
The argument string is a comma-separated list of `key=value` or bare switches,
e.g. `experiments/configs/vae_heatmaps.py:latent_dim=3,kl_weight=0.5,smoke`.
Flags such as `--config.train.epochs=5` override any field afterwards; the
returned config is locked, so a misspelled override is an error.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import ml_collections
from ml_collections.config_dict import placeholder

from latent_jax.evaluation.registry import RUN_FIGURES

# Short names accepted in the `get_config(arg)` string -> config path.
ARG_SHORTCUTS = {
    "latent_dim": "model.latent_dim",
    "kl_weight": "loss.kl_weight",
    "arch": "model.arch",
    "kind": "model.kind",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "learning_rate": "train.learning_rate",
    "seed": "seed",
    "data": "data.name",
}
ARG_SWITCHES = ("smoke",)


def base_config() -> ml_collections.ConfigDict:
  """Every field a train config has, with defaults.

  A field whose default is None is a typed `placeholder(type)`, so
  `--config.<key>=<value>` can set it (ml_collections refuses to override a
  plain None); `tests/experiments/test_train.py` holds every config to it.
  """
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = "heatmaps"
  config.data.test_fraction = 0.2      # heatmaps/digits: notebooks' 80/20
  config.data.split = "random"         # or "keras_notebook": its own split
  config.data.cache_dir = placeholder(str)  # heatmaps cache; None: ~/.cache
  config.data.data_dir = placeholder(str)  # tfds data_dir (mnist, fashion)
  config.data.classes = placeholder(tuple)  # e.g. (1, 5, 6) keeps those classes
  config.data.max_train = placeholder(int)  # subsample the train split
  config.data.max_test = placeholder(int)  # subsample the test split
  # A researcher's own data (docs/data.md); None: the loader's default.
  config.data.path = placeholder(str)  # arrays: .npz/.npy; image_folder: dir
  config.data.test_path = placeholder(str)  # arrays: a given test file, same keys
  config.data.images_key = placeholder(str)  # arrays: .npz key ("images")
  config.data.labels_key = placeholder(str)  # arrays: .npz key ("labels" if there)
  config.data.label_names = placeholder(str)  # arrays: "a,b" names of label columns
  config.data.image_shape = placeholder(tuple)  # arrays: (H, W[, C]) of flat [N, D]
  config.data.image_size = placeholder(int)  # image_folder/tfds: resize to N x N
  config.data.color = placeholder(str)  # image_folder/tfds: grayscale | rgb

  config.model = ml_collections.ConfigDict()
  config.model.kind = "vae"            # "vae" or "ae"
  config.model.arch = "small"          # a preset in latent_jax.models.PRESETS
  config.model.latent_dim = 3

  config.loss = ml_collections.ConfigDict()
  config.loss.likelihood = "bernoulli"  # or "gaussian"
  config.loss.gaussian_scale = 1.0      # observation std for "gaussian"
  config.loss.kl_weight = 1.0           # beta; ignored by the AE
  config.loss.kl_warmup_steps = 0       # linear KL warm-up; 0: off

  config.train = ml_collections.ConfigDict()
  config.train.epochs = 20
  config.train.batch_size = 64
  config.train.optimizer = "adam"       # "adam" or "adamw"
  config.train.learning_rate = 1e-3
  config.train.lr_schedule = "exponential"  # "constant", "exponential", "cosine"
  config.train.lr_decay_steps = 30      # exponential: lr * rate**(step/steps)
  config.train.lr_decay_rate = 0.99     # (Keras heatmap notebook's decay)
  config.train.warmup_steps = 0         # linear learning-rate warm-up
  config.train.weight_decay = 0.0       # adamw only
  config.train.grad_clip_norm = 0.0     # 0: no clipping
  config.train.steps_per_call = 200     # steps per host call (one sync)
  config.train.chunk_mode = "auto"      # "device_loop" (GPU/TPU), "dispatch"
                                        # (CPU); see latent_jax/train/step.py
  config.train.compute_dtype = "float32"  # or "bfloat16": mixed precision,
                                        # float32 params (train/step.py)
  config.train.log_every_steps = 200
  config.train.eval_every_steps = 0     # 0: once per epoch
  config.train.checkpoint_every_steps = 1000
  config.train.keep_checkpoints = 3

  # Members trained side by side in one program (latent_jax/train/ensemble.py):
  # every (KL weight, seed) pair, sharing each data batch. Empty: one member,
  # (loss.kl_weight, seed). Member seeds set parameter init and posterior
  # noise; the data split and batch order always come from `seed`.
  config.ensemble = ml_collections.ConfigDict()
  config.ensemble.kl_weights = ()      # e.g. (0.25, 0.5, 1.0, 2.0)
  config.ensemble.seeds = ()           # e.g. (0, 1, 2)
  config.ensemble.conv_batching = "auto"  # "per_member" (CPU), "grouped"
  config.ensemble.member_devices = 0   # mesh 'member' axis size; 0: auto

  # Latent-dimension sweep (experiments/sweep.py): one sub-run per entry in
  # <workdir>/latent_<d>/. Empty: just model.latent_dim.
  config.sweep = ml_collections.ConfigDict()
  config.sweep.latent_dims = ()        # e.g. (3, 4, 5, 9, 10, 15, 20, 32)
  config.sweep.one_program = False     # True: all dims in one masked program
                                       # <workdir>/one_program/ (ensemble.py)

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 500
  config.eval.num_images = 16           # images in reconstruction/sample plots
  config.eval.figures = "all"           # or a comma-separated subset
  config.eval.iwae_samples = 100        # K of the IWAE bound (VAE); 0: off

  config.log = ml_collections.ConfigDict()
  config.log.tensorboard = True         # also <workdir>/tensorboard/ events
  return config


def _parse_value(text: str, current: Any, key: str) -> Any:
  if isinstance(current, bool):
    if text.lower() in ("true", "1", "yes"):
      return True
    if text.lower() in ("false", "0", "no"):
      return False
    raise ValueError(f"Config argument {key}={text!r}: expected true/false.")
  try:
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
  except ValueError:
    raise ValueError(f"Config argument {key}={text!r}: expected a "
                     f"{type(current).__name__}.") from None
  return text


class ConfigArg(NamedTuple):
  """A parsed `get_config` argument string."""
  smoke: bool               # the `smoke` switch was given
  settings: dict[str, str]  # shortcut name -> raw value text


def parse_arg(arg: str | None, shortcuts: dict[str, str] = ARG_SHORTCUTS
              ) -> ConfigArg:
  """Splits a `get_config` string into (smoke, {shortcut: raw value})."""
  smoke, settings = False, {}
  for item in filter(None, (part.strip() for part in (arg or "").split(","))):
    key, sep, value = item.partition("=")
    if not sep:
      if key not in ARG_SWITCHES:
        raise ValueError(f"Unknown config switch {key!r}; switches: "
                         f"{list(ARG_SWITCHES)}, settings: "
                         f"{sorted(shortcuts)} (as key=value).")
      smoke = True
      continue
    if key not in shortcuts:
      raise ValueError(f"Unknown config argument {key!r}; known: "
                       f"{sorted(shortcuts)} and switches "
                       f"{list(ARG_SWITCHES)}. Other fields can be set with "
                       "--config.<path>=<value>.")
    settings[key] = value
  return ConfigArg(smoke, settings)


def shrink_for_smoke(config: ml_collections.ConfigDict) -> None:
  """Shrinks any config so it trains in seconds (tests use this)."""
  config.data.max_train = 256
  config.data.max_test = 128
  config.train.epochs = 2
  config.train.batch_size = 32
  config.train.steps_per_call = 4
  config.train.log_every_steps = 4
  config.train.eval_every_steps = 8
  config.train.checkpoint_every_steps = 8
  config.eval.batch_size = 64
  config.eval.num_images = 8
  config.eval.iwae_samples = 4
  if config.eval.figures == "all":  # every figure but the UMAP view's fit
    config.eval.figures = ",".join(f for f in RUN_FIGURES if f != "latent_umap")


def make_config(arg: str | None = None, *,
                base: ml_collections.ConfigDict | None = None,
                shortcuts: dict[str, str] = ARG_SHORTCUTS,
                shrink: Callable[[ml_collections.ConfigDict], None] =
                shrink_for_smoke, **overrides: Any
                ) -> ml_collections.ConfigDict:
  """Base config + experiment `overrides` ("section.field" keys) + `arg`.

  `base`, `shortcuts` and `shrink` let a family of experiments (the UMAP
  configs) add sections, `:key=value` names and its own `smoke`.
  """
  config = base_config() if base is None else base
  for path, value in overrides.items():
    section, _, field = path.rpartition(".")
    target = config[section] if section else config
    if field not in target:
      raise KeyError(f"Experiment default {path!r} is not a config field.")
    target[field] = value
  smoke, settings = parse_arg(arg, shortcuts)
  if smoke:  # first, so explicit settings (e.g. batch_size=...) win
    shrink(config)
  for key, raw in settings.items():
    section, _, field = shortcuts[key].rpartition(".")
    target = config[section] if section else config
    target[field] = _parse_value(raw, target[field], key)
  config.lock()
  return config
