"""Run setup: a batch larger than the training split is refused."""

import pytest

from experiments.configs import vae_digits
from latent_jax.runs import vae as vae_run


def test_batch_larger_than_the_dataset_is_refused(tmp_path):
  config = vae_digits.get_config("smoke,batch_size=1000")
  with pytest.raises(ValueError, match=r"train.batch_size=1000.*256"):
    vae_run.train_and_evaluate(config, str(tmp_path))
