"""Every config loads with smoke and validates; argument strings set fields,
name presets and reject typos; the configs' data names (arrays, tfds:<name>,
the binarized-MNIST benchmark on fake prepared data), the data checks
against the config, and a 2-step conv VAE on RGB 32x32 arrays."""

import glob
import importlib
import os

import numpy as np
import pytest

from experiments import configs
from experiments.configs import umap_digits, vae_digits
from latent_jax.train.config_checks import validate_config

CONFIG_NAMES = sorted(
    os.path.basename(path)[:-3]
    for path in glob.glob(os.path.join(os.path.dirname(configs.__file__),
                                       "*.py"))
    if not os.path.basename(path).startswith(("_", "common")))


def test_the_required_configs_exist():
  for name in ("vae_heatmaps", "ae_heatmaps", "vae_mnist", "ae_mnist"):
    assert name in CONFIG_NAMES


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_loads_with_smoke_and_validates(name):
  module = importlib.import_module(f"experiments.configs.{name}")
  config = module.get_config("smoke")
  validate_config(config)
  assert config.train.epochs <= 2 and config.data.max_train <= 256
  for key in ("seed", "data.name", "model.arch", "model.latent_dim",
              "loss.kl_weight", "train.epochs", "train.batch_size",
              "train.learning_rate"):
    section, _, field = key.rpartition(".")
    assert field in (config[section] if section else config)
  assert "python -m experiments.train" in module.__doc__


def test_argument_string_sets_fields_and_rejects_typos():
  config = vae_digits.get_config("latent_dim=5,kl_weight=0.25,arch=keras_conv")
  assert (config.model.latent_dim, config.loss.kl_weight,
          config.model.arch) == (5, 0.25, "keras_conv")
  with pytest.raises(ValueError, match="latnt_dim"):
    vae_digits.get_config("latnt_dim=5")
  with pytest.raises(ValueError, match="latent_dim"):
    vae_digits.get_config("latent_dim=five")
  with pytest.raises(ValueError, match="smoke"):
    vae_digits.get_config("smok")
  config = vae_digits.get_config("")
  with pytest.raises(AttributeError):
    config.model.latnt_dim = 3  # locked: a typo cannot add a field


def test_encoder_aliases_name_presets():
  assert umap_digits.get_config("encoder=conv").model.arch == "small"
  assert umap_digits.get_config("").model.arch == "umap_deep"


def test_binarized_mnist_config_loads_its_fake_prepared_data(tmp_path,
                                                            smoke_config):
  from experiments.configs import vae_binarized_mnist
  from latent_jax.train import setup
  from tests.data.fake_tfds import write_fake_prepared

  written = write_fake_prepared(tmp_path, "binarized_mnist",
                                {"train": 40, "test": 20}, binary=True)
  config = smoke_config(vae_binarized_mnist,
                        **{"data.data_dir": str(tmp_path)})
  assert vae_binarized_mnist.get_config().eval.iwae_samples == 5000
  dataset = setup.load_configured_dataset(config)
  assert (dataset.num_train, dataset.num_test) == (40, 20)
  assert set(np.unique(dataset.train_images)) == {0.0, 1.0}
  np.testing.assert_array_equal(dataset.test_images, written["test"][0])


def test_umap_config_takes_the_same_data_names(tmp_path, smoke_config):
  from latent_jax.train import setup

  np.savez(tmp_path / "x.npz", images=np.random.default_rng(0).random(
      (30, 8, 8), np.float32))
  config = smoke_config(umap_digits, **{"data.name": "arrays",
                                        "data.path": str(tmp_path / "x.npz")})
  validate_config(config)
  assert setup.load_configured_dataset(config).image_shape == (8, 8, 1)


def test_config_checks_against_the_data_name_the_field(tmp_path,
                                                       smoke_config):
  from latent_jax.train import setup

  np.savez(tmp_path / "x.npz", images=np.full((30, 3, 3), 2.0, np.float32))
  arrays = {"data.name": "arrays", "data.path": str(tmp_path / "x.npz")}
  with pytest.raises(ValueError, match="loss.likelihood"):
    setup.load_configured_dataset(smoke_config(vae_digits, **arrays))
  with pytest.raises(ValueError, match="model.arch='keras_conv'"):
    setup.load_configured_dataset(smoke_config(
        vae_digits, **arrays, **{"loss.likelihood": "gaussian",
                                 "model.arch": "keras_conv"}))
  with pytest.raises(ValueError, match="data.path"):
    setup.load_configured_dataset(smoke_config(
        vae_digits, **{"data.path": str(tmp_path / "x.npz")}))
  with pytest.raises(ValueError, match="data.name"):
    validate_config(smoke_config(vae_digits, **{"data.name": "tfds:"}))
  validate_config(smoke_config(vae_digits, **{"data.name": "tfds:cifar10"}))


def test_a_conv_vae_trains_two_steps_on_rgb_32x32(tmp_path, smoke_config):
  import jax
  import optax
  from flax import nnx
  from latent_jax.train import setup

  np.savez(tmp_path / "rgb.npz", images=np.random.default_rng(0).integers(
      0, 256, (80, 32, 32, 3), np.uint8))
  config = smoke_config(vae_digits, **{
      "data.name": "arrays", "data.path": str(tmp_path / "rgb.npz")})
  dataset = setup.load_configured_dataset(config)
  graphdef, params = nnx.split(setup.create_model(config,
                                                  dataset.image_shape))
  optimizer = optax.adam(1e-3)

  @jax.jit
  def step(params, opt_state, batch, key):
    def loss(p):
      terms = nnx.merge(graphdef, p).loss_terms(batch, key, "bernoulli")
      return (terms["recon"] + terms["kl"]).mean()
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  state = (params, optimizer.init(params))
  losses = []
  for i in range(2):
    batch = dataset.train_images[i * 16:(i + 1) * 16]
    *state, value = step(*state, batch, jax.random.key(i))
    losses.append(float(value))
  assert dataset.image_shape == (32, 32, 3) and np.all(np.isfinite(losses))
  # 32 x 32 x 3 Bernoulli values near 0.5 each cost about log 2 nats.
  assert 0.5 * 3072 * np.log(2) < losses[0] < 2 * 3072 * np.log(2)
