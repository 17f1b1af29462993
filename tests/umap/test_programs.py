"""The phases' programs are built once per setting and shared by refits."""

from flax import nnx

from latent_jax.models.embedding import build_embedder
from latent_jax.umap.phases import UMAPLossSettings
from latent_jax.umap.programs import OptimizerSettings, phase_programs


def test_programs_are_shared_by_equal_settings_only():
  graphdef = lambda: nnx.split(build_embedder(
      "umap_mlp", (5,), 2, with_decoder=False, rngs=nnx.Rngs(0)))[0]
  optimizer = OptimizerSettings(3e-2, 10, 0.0, 4.0)
  settings = UMAPLossSettings(1.58, 0.9, full_batch=True)
  programs = phase_programs(graphdef(), optimizer, settings, 64, 32,
                            "device_loop")
  # A new network of the same structure (a refit) gets the same programs.
  assert phase_programs(graphdef(), optimizer, settings, 64, 32,
                        "device_loop") is programs
  structure = graphdef()
  for changed in [
      (structure, optimizer._replace(total_steps=11), settings, 64, 32),
      (structure, optimizer, settings._replace(a=1.0), 64, 32),
      (structure, optimizer, settings, 64, 16)]:
    other = phase_programs(*changed, "device_loop")
    assert other.chunks["umap"] is not programs.chunks["umap"]
