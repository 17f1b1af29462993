"""Ensembles: many (KL weight, seed) members trained in one program.

Every run is an ensemble; a single model is an ensemble of one. The members
of a run are every pair of `config.ensemble.kl_weights` x
`config.ensemble.seeds` (KL weight major), or the one pair
(`loss.kl_weight`, `seed`) when those are empty. All members share one data
split and one batch order (drawn from `config.seed`); a member's seed sets its
parameter initialisation and its posterior noise. Member `(w, s)` of any
ensemble therefore takes exactly the steps of a one-member run with
`loss.kl_weight=w` and `ensemble.seeds=(s,)`.

A one-program sweep (`sweep.one_program`) adds the latent size: its members
are `sweep.latent_dims` x KL weights x seeds (latent dim major), the model
is built at `model.latent_dim` >= every entry, and member `(d, w, s)` trains
its first d latent dims only, through a traced [M, D] latent mask
(`models.autoencoders.latent_mask`).

The train state carries a leading member axis on every parameter and
optimiser leaf; the step maps the per-member update over it with `jax.vmap`
(see `vmap_members`), the KL weights and posterior keys being traced [M]
arrays, so any set of KL weights reuses one compiled program.

Convolutions under `jax.vmap` need care on CPU. When both operands carry the
member axis (every conv but the first, whose input is the shared batch), JAX
turns M convolutions into one grouped convolution, which XLA:CPU runs far
slower than the M convolutions one after another (docs/benchmarks.md).
`conv_batching="per_member"` keeps `jax.vmap` for
everything else but gives those convolutions a batching rule that emits one
ordinary convolution per member inside the same program. GPUs and TPUs run
grouped convolutions natively ("grouped", the default there).

That rule walks jaxprs with JAX APIs that change between releases
(`jax.extend.core`, equation contexts, the `jit` primitive's params), so it
runs only on the JAX releases it is tested with (`PER_MEMBER_JAX`): on any
other, or when one of those APIs is missing (`PER_MEMBER_PROBLEM`, found at
import without compiling anything), "per_member" warns and falls back to
"grouped", which is slower on CPU but correct.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from latent_jax.models.autoencoders import latent_mask

try:
  from jax.extend import core as jax_core
except ImportError:  # a JAX without it: PER_MEMBER_PROBLEM says so.
  jax_core = None

CONV_BATCHING = ("auto", "per_member", "grouped")
# The JAX releases the per-member rule is tested on: [lowest, first untested).
PER_MEMBER_JAX = ((0, 10, 0), (0, 11, 0))


def per_member_problem(version: str | None = None) -> str | None:
  """Why the per-member rule cannot run on this JAX, or None if it can.

  Checks that `version` (default: the installed `jax.__version__`) lies in
  `PER_MEMBER_JAX` and that every API the rule calls exists; nothing is
  traced or compiled, so this is cheap enough to run at import.
  """
  version = jax.__version__ if version is None else version
  low, high = PER_MEMBER_JAX
  match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
  release = tuple(int(part) for part in match.groups()) if match else None
  tested = ".".join(map(str, low)) + " <= jax < " + ".".join(map(str, high))
  if release is None or not low <= release < high:
    return f"JAX {version} is outside the tested range {tested}"
  needed = {
      "jax.extend.core.Literal": getattr(jax_core, "Literal", None),
      "jax.lax.conv_general_dilated_p": getattr(
          lax, "conv_general_dilated_p", None),
      "jax.custom_batching.custom_vmap": getattr(
          getattr(jax, "custom_batching", None), "custom_vmap", None),
      "jax.make_jaxpr": getattr(jax, "make_jaxpr", None),
      "jax.extend.core.Primitive.get_bind_params": getattr(
          getattr(jax_core, "Primitive", None), "get_bind_params", None),
  }
  missing = [name for name, api in needed.items() if api is None]
  eqn = getattr(jax_core, "JaxprEqn", None)
  if "ctx" not in (*getattr(eqn, "__slots__", ()),
                   *getattr(eqn, "__dataclass_fields__", ())):
    missing.append("jax.extend.core.JaxprEqn.ctx")
  if missing:
    return f"JAX {version} lacks {', '.join(missing)}"
  return None


PER_MEMBER_PROBLEM = per_member_problem()


@dataclasses.dataclass(frozen=True)
class Member:
  """One ensemble member: its position on the member axis and settings."""
  index: int
  kl_weight: float
  seed: int
  latent_dim: int | None = None  # a one-program sweep's size; None: model's

  @property
  def name(self) -> str:
    """Directory-safe label, e.g. `kl0.5_seed1` (`latent2_kl0.5_seed1`)."""
    prefix = "" if self.latent_dim is None else f"latent{self.latent_dim}_"
    return f"{prefix}kl{self.kl_weight:g}_seed{self.seed}"


def check_latent_dims(dims: Sequence[Any]) -> tuple[int, ...]:
  """`sweep.latent_dims` checked: distinct integers >= 1."""
  dims = tuple(dims)
  for dim in dims:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
      raise ValueError(f"Invalid config value sweep.latent_dims={dims!r}: "
                       f"every entry must be an integer >= 1, got {dim!r}.")
  if len(set(dims)) != len(dims):
    raise ValueError(f"Invalid config value sweep.latent_dims={dims!r}: "
                     "entries repeat; list each dim once.")
  return dims


def one_program_dims(config) -> tuple[int, ...]:
  """The member latent sizes of a one-program sweep run; () otherwise.

  Raises ValueError naming the key for an empty `sweep.latent_dims` or an
  entry above `model.latent_dim` (its mask would not fit the model).
  """
  sweep = config.get("sweep")
  if sweep is None or not sweep.get("one_program", False):
    return ()
  dims = check_latent_dims(sweep.latent_dims)
  if not dims:
    raise ValueError("Invalid config value sweep.latent_dims=(): "
                     "sweep.one_program=True needs the latent dims to train; "
                     "list them, e.g. --config.sweep.latent_dims='(2,3)'.")
  if max(dims) > config.model.latent_dim:
    raise ValueError(
        f"Invalid config value sweep.latent_dims={dims!r}: a latent mask of "
        f"{max(dims)} dims is larger than model.latent_dim="
        f"{config.model.latent_dim}; set --config.model.latent_dim="
        f"{max(dims)} (experiments.sweep does).")
  return dims


def ensemble_members(config) -> tuple[Member, ...]:
  """The members of `config`, KL weight major; raises on bad values."""
  kl_weights = tuple(config.ensemble.kl_weights)
  seeds = tuple(config.ensemble.seeds)
  for key, values, kinds in (("ensemble.kl_weights", kl_weights,
                              (int, float)),
                             ("ensemble.seeds", seeds, (int,))):
    for value in values:
      if isinstance(value, bool) or not isinstance(value, kinds) or (
          value < 0):
        raise ValueError(
            f"Invalid config value {key}={values!r}: every entry must be a "
            f"number >= 0, got {value!r}.")
    if len(set(values)) != len(values):
      raise ValueError(f"Invalid config value {key}={values!r}: entries "
                       "repeat; list each value once.")
  kl_weights = kl_weights or (float(config.loss.kl_weight),)
  seeds = seeds or (int(config.seed),)
  pairs = [(float(w), int(s)) for w in kl_weights for s in seeds]
  dims = one_program_dims(config)
  if dims:
    return tuple(Member(i, w, s, d) for i, (d, (w, s)) in enumerate(
        (d, pair) for d in dims for pair in pairs))
  return tuple(Member(i, w, s) for i, (w, s) in enumerate(pairs))


def resolve_platform_mode(key: str, mode: str, choices: Sequence[str],
                          on_cpu: str, on_accelerator: str,
                          platform: str | None = None) -> str:
  """Checks config value `key`; "auto" -> the choice for this platform."""
  if mode not in choices:
    raise ValueError(f"Invalid config value {key}={mode!r}: must be one of "
                     f"{list(choices)}.")
  if mode != "auto":
    return mode
  platform = platform or jax.default_backend()
  return on_cpu if platform == "cpu" else on_accelerator


def resolve_conv_batching(mode: str, platform: str | None = None) -> str:
  """"auto" -> "per_member" on CPU, "grouped" on GPU/TPU (module doc).

  "per_member" becomes "grouped", with a warning naming the JAX version,
  when `PER_MEMBER_PROBLEM` says this JAX cannot run its batching rule.
  """
  mode = resolve_platform_mode("ensemble.conv_batching", mode, CONV_BATCHING,
                               "per_member", "grouped", platform)
  if mode == "per_member" and PER_MEMBER_PROBLEM is not None:
    warnings.warn(
        f"ensemble.conv_batching='per_member' is unavailable: "
        f"{PER_MEMBER_PROBLEM}. Using 'grouped' (plain jax.vmap), which is "
        "correct but slower on CPU; install a tested JAX (constraints.txt) "
        "or set --config.ensemble.conv_batching=grouped to silence this.",
        RuntimeWarning, stacklevel=2)
    return "grouped"
  return mode


def stack_members(trees: Sequence[Any]) -> Any:
  """[tree per member] -> one tree with a leading member axis."""
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def member_slice(tree: Any, index: int) -> Any:
  """Member `index` of a stacked tree (host or device arrays)."""
  return jax.tree.map(lambda leaf: leaf[index], tree)


class MemberKeys(NamedTuple):
  """The randomness, KL weights and latent masks of a run's members."""
  data_key: jax.Array    # batch order, shared by the members
  model_keys: jax.Array  # [M] posterior-noise keys
  kl_weights: jax.Array  # [M] float32
  latent_masks: jax.Array | None = None  # [M, D] float32; None: no mask


def member_keys(config, members: Sequence[Member]) -> MemberKeys:
  """The data key, each member's noise key, KL weight and latent mask.

  The data key (batch order) comes from `config.seed` and is shared; each
  member's posterior-noise key from its own seed, derived exactly as a
  one-member run derives it, so members equal their single runs. Latent
  masks only when some member has its own `latent_dim`.
  """
  data_key = jax.random.fold_in(jax.random.key(config.seed), 0)
  model_keys = jnp.stack([jax.random.fold_in(jax.random.key(m.seed), 1)
                          for m in members])
  kl_weights = jnp.asarray([m.kl_weight for m in members], jnp.float32)
  if all(m.latent_dim is None for m in members):
    return MemberKeys(data_key, model_keys, kl_weights)
  size = config.model.latent_dim
  masks = jnp.asarray(np.stack([latent_mask(
      size if m.latent_dim is None else m.latent_dim, size) for m in members]))
  return MemberKeys(data_key, model_keys, kl_weights, masks)


# --- vmap with one ordinary convolution per member ---------------------------

_CONV = getattr(lax, "conv_general_dilated_p", None)


def _conv_per_member(params: dict[str, Any]) -> Callable:
  """conv(lhs, rhs) whose vmap rule loops over members when both are mapped.

  With one operand unmapped (the first layer's shared input batch, or its
  weight gradient) JAX's own rule folds the member axis into the batch or
  feature dimension, which is a single dense convolution: keep it.
  """

  @jax.custom_batching.custom_vmap
  def conv(lhs, rhs):
    return _CONV.bind(lhs, rhs, **params)

  @conv.def_vmap
  def _rule(axis_size, in_batched, lhs, rhs):
    lhs_mapped, rhs_mapped = in_batched
    if lhs_mapped and rhs_mapped:
      return jnp.stack([_CONV.bind(lhs[i], rhs[i], **params)
                        for i in range(axis_size)]), True
    return jax.vmap(lambda a, b: _CONV.bind(a, b, **params),
                    in_axes=(0 if lhs_mapped else None,
                             0 if rhs_mapped else None))(lhs, rhs), True

  return conv


def _eval_jaxpr(jaxpr, consts, *args) -> list[Any]:
  """Evaluates a jaxpr, routing every convolution through `_conv_per_member`.

  Nested `jit` calls are inlined so their convolutions are routed too; every
  other primitive (including control flow) is bound unchanged.
  """
  env = {}

  def read(var):
    return var.val if isinstance(var, jax_core.Literal) else env[var]

  env.update(zip(jaxpr.constvars, consts))
  env.update(zip(jaxpr.invars, args))
  for eqn in jaxpr.eqns:
    inputs = [read(var) for var in eqn.invars]
    if eqn.primitive is _CONV:
      outputs = [_conv_per_member(eqn.params)(*inputs)]
    elif eqn.primitive.name in ("jit", "pjit"):
      inner = eqn.params["jaxpr"]
      outputs = _eval_jaxpr(inner.jaxpr, inner.consts, *inputs)
    else:
      with eqn.ctx.manager:
        outputs = eqn.primitive.bind(
            *inputs, **eqn.primitive.get_bind_params(eqn.params))
      if not eqn.primitive.multiple_results:
        outputs = [outputs]
    env.update(zip(eqn.outvars, outputs))
  return [read(var) for var in jaxpr.outvars]


def vmap_members(fn: Callable, in_axes: Sequence[int | None],
                 conv_batching: str = "auto") -> Callable:
  """`jax.vmap(fn, in_axes)` over the member axis, convolutions per member.

  Args:
    fn: the per-member function; every input is an explicit argument (it
      must not close over traced values).
    in_axes: 0 (mapped over members) or None (shared) per positional
      argument, as for `jax.vmap`.
    conv_batching: "grouped" is plain `jax.vmap`; "per_member" traces `fn`
      once for one member and maps that program with convolutions emitted
      per member (see module doc); "auto" picks by platform.

  The results are the same either way, to float tolerance.
  """
  in_axes = tuple(in_axes)
  mode = resolve_conv_batching(conv_batching)

  def members_in(args) -> int:
    return next(jax.tree.leaves(arg)[0].shape[0]
                for arg, axis in zip(args, in_axes) if axis == 0)

  def one_member(*args):
    # An ensemble of one runs `fn` itself on the squeezed member: a vmap
    # over an axis of size 1 adds copies and transposes around every
    # convolution, which slows a CPU step markedly.
    outputs = fn(*[arg if axis is None else member_slice(arg, 0)
                   for arg, axis in zip(args, in_axes)])
    return jax.tree.map(lambda leaf: leaf[None], outputs)

  if mode == "grouped":
    def grouped(*args):
      if members_in(args) == 1:
        return one_member(*args)
      return jax.vmap(fn, in_axes=in_axes)(*args)
    return grouped

  def mapped(*args):
    if members_in(args) == 1:
      return one_member(*args)
    def member_spec(arg, axis):
      if axis is None:
        return arg
      return jax.tree.map(
          lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), arg)

    specs = [member_spec(arg, axis) for arg, axis in zip(args, in_axes)]
    flat_specs, in_tree = jax.tree.flatten(specs)

    def flat_fn(*flat):
      return fn(*jax.tree.unflatten(in_tree, flat))

    closed, out_shape = jax.make_jaxpr(flat_fn, return_shape=True)(
        *flat_specs)
    out_tree = jax.tree.structure(out_shape)

    def run(*member_args):
      outputs = _eval_jaxpr(closed.jaxpr, closed.consts,
                            *jax.tree.leaves(member_args))
      return jax.tree.unflatten(out_tree, outputs)

    return jax.vmap(run, in_axes=in_axes)(*args)

  return mapped


def host_members(tree: Any) -> list[Any]:
  """Stacked device tree -> list of per-member NumPy trees."""
  host = jax.tree.map(np.asarray, tree)
  count = jax.tree.leaves(host)[0].shape[0]
  return [member_slice(host, i) for i in range(count)]
