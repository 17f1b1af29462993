"""Named architectures (`config.model.arch`) and `build_model`.

A preset is plain data: which trunk/decoder classes to use and their widths.
`PRESETS` is the registry; an unknown name lists the known ones.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from flax import nnx

from latent_jax.models.autoencoders import AE, VAE
from latent_jax.models.conv import ConvDecoder, ConvEncoder, encoder_output_hw
from latent_jax.models.mlp import MLPDecoder, MLPEncoder

PRESETS: dict[str, dict[str, Any]] = {
    # The Keras VAE-vs-AE heatmap notebook's model, layer for layer:
    # Conv32 -> [Conv64, pool] -> [Conv128, pool] -> [Conv64, pool] ->
    # Dense64 -> heads; Dense1024 -> 4x4x64 -> ConvT64 s1 -> ConvT64 s3 ->
    # ConvT32 s3 -> ConvT1. For 36x36 inputs: 232,454 encoder (VAE) and
    # 96,705 decoder parameters.
    "keras_conv": dict(
        family="conv",
        encoder=dict(features=(32, 64, 128, 64), strides=(1, 1, 1, 1),
                     pool=(False, True, True, True), hidden=(64,)),
        decoder=dict(start_features=64, features=(64, 64, 32),
                     strides=(1, 3, 3), hidden=()),
    ),
    # Default for the quick runs: strided convs instead of conv + pool, so a
    # step costs a small fraction of keras_conv's FLOPs and the default
    # experiment stays short on a 2-core CPU.
    "small": dict(
        family="conv",
        encoder=dict(features=(32, 64), strides=(2, 2), pool=(False, False),
                     hidden=(64,)),
        decoder=dict(start_features=32, features=(32, 16), strides=(2, 2),
                     hidden=()),
    ),
    # 64x64 images (e.g. CelebA resized, RGB or grayscale): four stride-2
    # convs, 64 -> 4, a 256-wide dense layer; the decoder mirrors it from a
    # 4x4x128 grid. Takes 32x32 too (32 -> 2).
    "conv64": dict(
        family="conv",
        encoder=dict(features=(32, 64, 128, 128), strides=(2, 2, 2, 2),
                     pool=(False, False, False, False), hidden=(256,)),
        decoder=dict(start_features=128, features=(128, 64, 32),
                     strides=(2, 2, 2), hidden=(256,)),
    ),
    # Two hidden layers of 500 each way: the binarized-MNIST benchmark's MLP
    # (experiments/configs/vae_binarized_mnist.py says which papers).
    "mlp500": dict(
        family="mlp",
        encoder=dict(hidden=(500, 500)),
        decoder=dict(hidden=(500, 500)),
    ),
    # The Keras MLP-autoencoder notebook's model: 784-500-300-latent and back.
    "keras_mlp": dict(
        family="mlp",
        encoder=dict(hidden=(500, 300)),
        decoder=dict(hidden=(300, 500)),
    ),
    # umap-learn's ParametricUMAP default encoder (3 x 100 ReLU), and its
    # mirror image as the optional decoder.
    "umap_mlp": dict(
        family="mlp",
        encoder=dict(hidden=(100, 100, 100)),
        decoder=dict(hidden=(100, 100, 100)),
    ),
    # ParametricUMAP's default ("mlp"): five 64-wide SiLU layers. Depth,
    # not width, is what lets an encoder fit UMAP's clustered layout and
    # place new points as the layout would, and a smooth activation fits
    # it closer than ReLU; at 20k multiply-adds per point it costs less per
    # step than 3 x 100 (docs/benchmarks.md compares the shapes and
    # activations). The decoder stays umap-learn's 3 x 100 ReLU.
    "umap_deep": dict(
        family="mlp",
        encoder=dict(hidden=(64, 64, 64, 64, 64), activation="silu"),
        decoder=dict(hidden=(100, 100, 100)),
    ),
}


def _check_arch(arch: str) -> dict[str, Any]:
  if arch not in PRESETS:
    raise ValueError(f"Unknown model.arch {arch!r}; known presets: "
                     f"{sorted(PRESETS)}.")
  return PRESETS[arch]


def check_input_shape(arch: str, input_shape: Sequence[int]) -> None:
  """Raises ValueError when preset `arch` cannot take [H, W, C] images.

  Checked before any model is built, so a mismatch names the config keys
  rather than surfacing as a shape error in a compiled step.
  """
  preset = _check_arch(arch)
  shape = tuple(int(s) for s in input_shape)
  if len(shape) != 3 or min(shape) < 1:
    raise ValueError(f"model.arch={arch!r} needs [H, W, C] images, got "
                     f"shape {shape}.")
  if preset["family"] != "conv":
    return
  encoder = preset["encoder"]
  sizes = encoder_output_hw(shape[:2], encoder["strides"], encoder["pool"])
  if min(min(hw) for hw in sizes) < 1:
    fits = sorted(name for name, p in PRESETS.items() if p["family"] == "mlp"
                  or min(min(hw) for hw in encoder_output_hw(
                      shape[:2], p["encoder"]["strides"],
                      p["encoder"]["pool"])) >= 1)
    raise ValueError(
        f"model.arch={arch!r} cannot take {shape[0]}x{shape[1]} images: its "
        f"{len(sizes)} downsampling layers shrink them below one pixel. Use "
        f"one of {fits} or resize with --config.data.image_size.")


class EncoderDecoder(NamedTuple):
  """A preset's encoder trunk and decoder, before any latent head."""
  encoder: ConvEncoder | MLPEncoder  # [B, H, W, C] -> [B, out_features]
  decoder: ConvDecoder | MLPDecoder  # [B, latent_dim] -> [B, H, W, C]


def build_encoder_decoder(arch: str, input_shape: Sequence[int],
                          latent_dim: int, *, rngs: nnx.Rngs
                          ) -> EncoderDecoder:
  """(encoder trunk, decoder) for a preset and an [H, W, C] input shape."""
  preset = _check_arch(arch)
  if preset["family"] == "conv":
    encoder = ConvEncoder(input_shape, **preset["encoder"], rngs=rngs)
    decoder = ConvDecoder(latent_dim, input_shape, **preset["decoder"],
                          rngs=rngs)
  else:
    encoder = MLPEncoder(input_shape, **preset["encoder"], rngs=rngs)
    decoder = MLPDecoder(latent_dim, input_shape, **preset["decoder"],
                         rngs=rngs)
  return EncoderDecoder(encoder, decoder)


MODEL_KINDS = {"vae": VAE, "ae": AE}


def build_model(kind: str, arch: str, input_shape: Sequence[int],
                latent_dim: int, *, rngs: nnx.Rngs) -> VAE | AE:
  """A VAE or AE from a preset name.

  Args:
    kind: "vae" or "ae".
    arch: a key of `PRESETS`.
    input_shape: (H, W, C) of the images.
    latent_dim: latent code size (>= 1).
    rngs: parameter initialisation randomness.
  """
  if kind not in MODEL_KINDS:
    raise ValueError(f"Unknown model.kind {kind!r}; expected one of "
                     f"{sorted(MODEL_KINDS)}.")
  if latent_dim < 1:
    raise ValueError(f"model.latent_dim must be >= 1, got {latent_dim}.")
  encoder, decoder = build_encoder_decoder(arch, input_shape, latent_dim,
                                           rngs=rngs)
  return MODEL_KINDS[kind](encoder, decoder, latent_dim, rngs=rngs)
