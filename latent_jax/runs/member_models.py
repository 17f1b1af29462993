"""Each ensemble member as a model of its own latent size.

A one-program sweep (train/ensemble.py) trains every member at the run's
`model.latent_dim` D with a latent mask; member (d, w, s) is then the
d-dimensional model, whose parameters are the D-model's cut to d
(`models.autoencoders.restrict_latent`). Evaluation, restore and the sweep
figures see that d-model, so IWAE, active units and latent plots count only
its d dims. Members without a latent size are the run's model itself.
"""

from __future__ import annotations

from typing import Any, Sequence

import ml_collections
from flax import nnx

from latent_jax.models.autoencoders import restrict_latent
from latent_jax.train import setup
from latent_jax.train.ensemble import Member


def sized_config(config: ml_collections.ConfigDict, latent_dim: int
                 ) -> ml_collections.ConfigDict:
  """`config` with `model.latent_dim` set (a copy)."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.model.latent_dim = latent_dim
  return config


class MemberModels:
  """The graph and parameters of each member at its own latent size.

  Args:
    config: the run's config (model built at `model.latent_dim` D).
    image_shape: (H, W, C) of the data.
    model: the run's D-dimensional module.
    members: the run's members; those with a `latent_dim` get their own.

  Raises ValueError naming `sweep.one_program` when a member's model
  differs from the D-model in more than the latent size (no mask can make
  one the other).
  """

  def __init__(self, config, image_shape: Sequence[int], model: nnx.Module,
               members: Sequence[Member]):
    self._model, self._size = model, int(config.model.latent_dim)
    self._graphdef, full = nnx.split(model)
    self._small: dict[int, tuple[nnx.GraphDef, Any]] = {}
    for dim in sorted({m.latent_dim for m in members} - {None}):
      graphdef, state = nnx.split(nnx.eval_shape(
          lambda d=dim: setup.create_model(sized_config(config, d),
                                           image_shape, 0)))
      try:
        restrict_latent(full, state, self._size, dim)
      except ValueError as error:
        raise ValueError(
            f"Invalid config value sweep.one_program=True: model "
            f"{config.model.kind}/{config.model.arch} at latent_dim={dim} "
            f"is not the latent_dim={self._size} model with masked dims "
            f"({error}). Use sweep.one_program=False (one run per latent "
            "dim).") from error
      self._small[dim] = (graphdef, state)

  def latent_dim(self, member: Member) -> int:
    """The member's own latent size."""
    return self._size if member.latent_dim is None else member.latent_dim

  def graphdef(self, member: Member) -> nnx.GraphDef:
    if member.latent_dim is None:
      return self._graphdef
    return self._small[member.latent_dim][0]

  def params(self, member: Member, params: Any) -> Any:
    """The member's D-model state (host or device) -> its own model's."""
    if member.latent_dim is None:
      return params
    _, state = self._small[member.latent_dim]
    return restrict_latent(params, state, self._size, member.latent_dim)

  def model(self, member: Member, params: Any) -> nnx.Module:
    """A module of the member's latent size holding `params` (the run's
    model itself, updated, for a member without a latent size)."""
    if member.latent_dim is None:
      nnx.update(self._model, params)
      return self._model
    return nnx.merge(self.graphdef(member), self.params(member, params))
