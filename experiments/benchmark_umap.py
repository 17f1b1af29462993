"""`python -m experiments.benchmark umap`: ParametricUMAP beside umap-learn.

`--protocol=paper` instead runs the Parametric UMAP paper's protocol on
several sets and seeds (experiments/benchmark_umap_protocol.py); the
default protocol is this module's:

For each data set (--umap_sets): scikit-learn's real digits (1,797 x 64),
`mnist_like` (5,000 x 784: the digits upsampled to 28 x 28 and augmented,
a stand-in for MNIST where it cannot be downloaded) and `synthetic` (the
same generator at 100,000 x 784), split 80/20:

- our fit: seconds per phase (kNN, graph, spectral, layout, network
  training), training edges/s, total; trustworthiness (k=10) and 5-fold
  5-NN accuracy of the training embedding and of the held-out transform,
  by the encoder and refined (`transform(method="refine")`); transform
  time for 10,000 points after compilation, and its FLOP rate as a
  fraction of this machine's jitted matmul rate measured in the same run;
  the refined transform's time for the same 10,000 points;
- umap-learn's `UMAP` on the same arrays in the same process (when it is
  installed): fit time, the same scores, its transform time for 10,000
  points;
- with --umap_inverse (on mnist_like): inverse transform of held-out
  points through our decoder vs umap-learn's `inverse_transform`: mean
  squared error next to predicting the mean image, and seconds.

--umap_scale instead fits 1,000,000 x 50 and reports the peak host memory.

Both libraries are warmed up first on a small array (XLA compilation, numba
JIT), so fit times compare steady-state code; ours still compiles for the
new array shapes inside the timed fit.
"""

from __future__ import annotations

import functools
import os
import time
import warnings

import numpy as np
from absl import flags

from experiments import benchmark_umap_protocol as protocol
from experiments.benchmark_umap_sets import PROTOCOL_SETS
from experiments.cli import OUT
from experiments.timing import matmul_flops_per_sec
from latent_jax import ParametricUMAP
from latent_jax.data.digits import mnist_like_digits
from latent_jax.evaluation import embedding_metrics
from latent_jax.train.workdir import write_json

_SETS = flags.DEFINE_list("umap_sets", ["digits", "mnist_like", "synthetic"],
                          "Data sets for the umap benchmark (--protocol="
                          "paper: all of its sets unless given).")
_INVERSE = flags.DEFINE_bool("umap_inverse", True, "Also compare inverse "
                             "transforms (decoder vs umap-learn).")
_SCALE = flags.DEFINE_bool(
    "umap_scale", False, "Instead: fit 1,000,000 x 50 float32 (20 Gaussian "
    "clusters) with one epoch per phase and report the peak host memory "
    "(graph and edge tables, not epochs, set the peak; ~15 min here).")
_PEER = flags.DEFINE_bool("umap_peer", True, "Run umap-learn beside ours "
                          "when it is installed.")

PROTOCOLS = ("default", "paper")
_PROTOCOL = flags.DEFINE_enum(
    "protocol", "default", PROTOCOLS, "umap: `default` (this benchmark's "
    "sets, phases, inverse) or `paper` (the Parametric UMAP paper's table: "
    f"sets {', '.join(PROTOCOL_SETS)}, all by default; several seeds).")
_SEEDS = flags.DEFINE_list("umap_seeds", ["0", "1", "2"], "umap "
                           "--protocol=paper: the seeds of both estimators.")
_PEER_CACHE = flags.DEFINE_string(
    "umap_peer_cache", None, "umap --protocol=paper: JSON file of umap-learn's"
    " scores per (set, seed, sizes, version), reused by later runs.")

SIZES = {"mnist_like": 6250, "synthetic": 125_000}  # 80% trains: 5,000 and 100,000


def known_sets(protocol_name: str) -> tuple[str, ...]:
  """The --umap_sets names `protocol_name` accepts."""
  if protocol_name == "paper":
    return tuple(PROTOCOL_SETS)
  return ("digits", *SIZES)


def check_umap_sets(values: dict) -> bool:
  """--umap_sets against --protocol (absl runs it while parsing, so a bad
  value is one line before any work)."""
  known = known_sets(values["protocol"])
  unknown = [name for name in values["umap_sets"] or () if name not in known]
  if unknown:
    raise flags.ValidationError(
        f"--umap_sets: unknown {unknown} for --protocol="
        f"{values['protocol']}; accepted: {', '.join(known)}")
  return True


def check_umap_seeds(seeds: list[str] | None) -> bool:
  """--umap_seeds: comma-separated integers >= 0."""
  bad = [seed for seed in seeds or () if not seed.isdigit()]
  if bad or not seeds:
    problem = f"{bad} are not integers >= 0" if bad else "no seeds given"
    raise flags.ValidationError(
        f"{problem}; accepted: comma-separated integers, e.g. "
        "--umap_seeds=0,1,2")
  return True


flags.register_multi_flags_validator(["protocol", "umap_sets"],
                                     check_umap_sets)
flags.register_validator("umap_seeds", check_umap_seeds)


def _load(name: str) -> tuple[np.ndarray, np.ndarray]:
  if name == "digits":
    from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
    data, labels = load_digits(return_X_y=True)
    return (data / 16.0).astype(np.float32), labels
  images, labels = mnist_like_digits(SIZES[name], seed=0)
  return images.reshape(len(images), -1), labels


def _split(data, labels, seed=0):
  order = np.random.default_rng(seed).permutation(len(data))
  cut = int(0.8 * len(data))
  return (data[order[:cut]], labels[order[:cut]], data[order[cut:]],
          labels[order[cut:]])


def _scores(prefix, data, embedding, labels) -> dict[str, float]:
  return {
      f"{prefix}trustworthiness": embedding_metrics.trustworthiness(
          data, embedding),
      f"{prefix}knn_accuracy": embedding_metrics.knn_accuracy(embedding,
                                                              labels),
  }


def _transform_seconds(transform, data, num=10_000) -> float:
  points = np.resize(data, (num, data.shape[1]))  # repeats rows if needed
  transform(points)  # compile / warm
  started = time.perf_counter()
  transform(points)
  return time.perf_counter() - started


def _ours(train, train_labels, test, test_labels) -> dict[str, float]:
  reducer = ParametricUMAP(random_state=0)
  started = time.perf_counter()
  embedding = reducer.fit_transform(train)
  result = {"fit_sec": time.perf_counter() - started}
  result.update({f"{k}_sec": v for k, v in reducer.timings_.items()
                 if k != "total"})
  result["train_edges_per_sec"] = reducer.edges_per_second_
  result.update(_scores("", train, embedding, train_labels))
  result.update(_scores("heldout_", test, reducer.transform(test),
                        test_labels))
  result.update(_scores("heldout_refined_", test,
                        reducer.transform(test, method="refine"),
                        test_labels))
  result["transform_10k_sec"] = _transform_seconds(reducer.transform, test)
  result["refine_10k_sec"] = _transform_seconds(
      functools.partial(reducer.transform, method="refine"), test)
  # How close transform gets to this machine's matmul rate (shared machines
  # are noisy: the ratio, measured in one run, is what to compare).
  result["transform_fraction_of_matmul_rate"] = (
      10_000 * _embed_flops_per_point(reducer, test)
      / result["transform_10k_sec"] / matmul_flops_per_sec())
  return result


def _embed_flops_per_point(reducer, data) -> float:
  """XLA's FLOP count of the jitted encoder (PCA included), per input row."""
  import jax  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from latent_jax.umap.projection import project  # pylint: disable=g-import-not-at-top
  graphdef, params = nnx.split(reducer.model_)
  embed = jax.jit(lambda p, x: nnx.merge(graphdef, p).embed(
      project(reducer.input_projection_, x)))
  batch = data[:1024]
  cost = embed.lower(params, batch).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost["flops"]) / len(batch)


def _peer(train, train_labels, test, test_labels) -> dict[str, float]:
  import umap  # pylint: disable=g-import-not-at-top
  reducer = umap.UMAP(random_state=0)
  started = time.perf_counter()
  embedding = reducer.fit_transform(train)
  result = {"fit_sec": time.perf_counter() - started}
  result.update(_scores("", train, embedding, train_labels))
  result.update(_scores("heldout_", test, reducer.transform(test),
                        test_labels))
  # One timed call (umap-learn's transform takes seconds; numba is warm).
  points = np.resize(test, (10_000, test.shape[1]))
  started = time.perf_counter()
  reducer.transform(points)
  result["transform_10k_sec"] = time.perf_counter() - started
  return result


def _inverse(train, test, peer: bool, num=200) -> dict[str, float]:
  """Held-out points -> embedding -> back: MSE and seconds per method."""
  ours = ParametricUMAP(random_state=0, parametric_reconstruction=True)
  ours.fit(train)
  points = ours.transform(test[:num])
  mean_mse = float(np.mean((test[:num] - train.mean(axis=0)) ** 2))
  result = {"mean_image_mse": mean_mse}
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a few held-out points leave the hull
    ours.inverse_transform(points)  # compile
    started = time.perf_counter()
    decoded = ours.inverse_transform(points)
    result["ours_decoder_sec"] = time.perf_counter() - started
    result["ours_decoder_mse"] = float(np.mean((decoded - test[:num]) ** 2))
    started = time.perf_counter()
    interpolated = ours.inverse_transform(points, method="interpolate")
    result["ours_interpolate_sec"] = time.perf_counter() - started
    result["ours_interpolate_mse"] = float(np.mean(
        (interpolated - test[:num]) ** 2))
  if peer:
    import umap  # pylint: disable=g-import-not-at-top
    theirs = umap.UMAP(random_state=0).fit(train)
    their_points = theirs.transform(test[:num])
    started = time.perf_counter()
    inverted = theirs.inverse_transform(their_points)
    result["umap_learn_sec"] = time.perf_counter() - started
    result["umap_learn_mse"] = float(np.mean((inverted - test[:num]) ** 2))
    result["speedup_decoder_vs_umap_learn"] = (
        result["umap_learn_sec"] / max(result["ours_decoder_sec"], 1e-9))
  return result


def benchmark_scale(num: int = 1_000_000, dims: int = 50
                    ) -> dict[str, float]:
  """Peak resident host memory of a fit on [num, dims] float32."""
  import resource  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  centres = rng.normal(0, 5, (20, dims)).astype(np.float32)
  data = (centres[rng.integers(0, 20, num)]
          + rng.normal(0, 1, (num, dims)).astype(np.float32))
  reducer = ParametricUMAP(random_state=0, verbose=True, n_epochs=1,
                           layout_epochs=2, init_epochs=1)
  started = time.perf_counter()
  reducer.fit(data)
  result = {"fit_sec": time.perf_counter() - started,
            "edges": float(len(reducer.edges_.weight)),
            "data_gib": data.nbytes / 2**30,
            # ru_maxrss is in KiB on Linux.
            "peak_rss_gib": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 2**20}
  result.update({f"{k}_sec": v for k, v in reducer.timings_.items()})
  return {f"scale/{k}": v for k, v in result.items()}


def _peer_installed() -> bool:
  try:
    import umap  # pylint: disable=g-import-not-at-top,unused-import
    return True
  except ImportError:
    print("umap-learn is not installed: timing ours only "
          "(pip install umap-learn for the comparison).")
    return False


def benchmark_paper_protocol(peer: bool) -> dict[str, float]:
  """--protocol=paper: prints the table; writes it (umap_protocol.md) and
  the numbers (umap_protocol.json) to --out when given."""
  sets = (_SETS.value if flags.FLAGS["umap_sets"].present
          else list(PROTOCOL_SETS))
  started = time.perf_counter()
  rows = protocol.protocol_scores(sets, [int(s) for s in _SEEDS.value],
                                  peer=peer, peer_cache=_PEER_CACHE.value)
  table = protocol.markdown(rows)
  results = protocol.summary(rows)
  results["wall_sec"] = time.perf_counter() - started
  print(table, flush=True)
  if OUT.value:
    os.makedirs(OUT.value, exist_ok=True)
    with open(os.path.join(OUT.value, "umap_protocol.md"), "w") as file:
      file.write(table + "\n")
    write_json(os.path.join(OUT.value, "umap_protocol.json"), results)
  return results


def benchmark_umap() -> dict[str, float]:
  if _SCALE.value:
    return benchmark_scale()
  peer = _PEER.value and _peer_installed()
  if _PROTOCOL.value == "paper":
    return benchmark_paper_protocol(peer)
  # Warm-up: XLA compilation and numba JIT on small arrays (umap-learn's
  # exact kNN below 4,096 points and NN-descent above).
  protocol.warm_ours({})
  if peer:
    protocol.warm_peer({})

  results = {}
  for name in _SETS.value:
    data, labels = _load(name)
    train, train_labels, test, test_labels = _split(data, labels)
    print(f"== {name}: {train.shape[0]} train x {train.shape[1]} features, "
          f"{len(test)} held out", flush=True)
    ours = _ours(train, train_labels, test, test_labels)
    for key, value in ours.items():
      results[f"{name}/ours/{key}"] = value
    if peer:
      theirs = _peer(train, train_labels, test, test_labels)
      for key, value in theirs.items():
        results[f"{name}/umap_learn/{key}"] = value
      results[f"{name}/fit_time_ratio_ours_over_umap_learn"] = (
          ours["fit_sec"] / theirs["fit_sec"])
    print({k: round(v, 4) for k, v in results.items()
           if k.startswith(name)}, flush=True)
    if _INVERSE.value and name == "mnist_like":
      for key, value in _inverse(train, test, peer).items():
        results[f"{name}/inverse/{key}"] = value
  return results
