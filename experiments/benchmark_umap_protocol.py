"""`benchmark umap --protocol=paper`: the Parametric UMAP paper's table, ours
beside umap-learn's `UMAP`, several data sets and seeds.

    python -m experiments.benchmark umap --protocol=paper \
        [--umap_sets=digits,mnist_like,clusters,heatmaps] [--umap_seeds=0,1,2]
        [--umap_peer_cache=/tmp/umap_peer_cache.json] [--out=DIR]

In-process (other estimator settings, umap-learn's numbers reused)::

    from experiments import benchmark_umap_protocol as protocol
    rows = protocol.protocol_scores(["digits", "clusters"], [0, 1, 2],
                                    ours_params={"n_epochs": 300},
                                    peer_cache="/tmp/umap_peer_cache.json")
    print(protocol.markdown(rows)); numbers = protocol.summary(rows)

Per set (`benchmark_umap_sets.PROTOCOL_SETS`: one fixed split each) and
seed, each estimator (`ParametricUMAP(random_state=seed, **ours_params)`,
`umap.UMAP(random_state=seed)`) is fit on the training points, embeds the
held-out points with its own `transform`, and is scored (`MEASURES`):
trustworthiness of the training embedding (k=10 and the paper's k=5) and
of the held-out embedding (k=10), on at most `MAX_POINTS` points (the same
subset for both); 1-NN / 5-NN accuracy of a classifier fit on the training
embedding, scored on the held-out one, and the silhouette of the training
embedding (sets with class labels); fit seconds (`fit_transform`) and
held-out transform seconds in steady state (ours: a second call, after
compiling its batch shape; umap-learn: its one call, numba warm). Both
libraries are warmed up first (XLA compilation, numba JIT), and, as the
comparison is of warmed-up fits, ours is fit once more on each set before
its timed seeds (`first_fit`): that fit compiles the programs for the
set's shapes, which the timed fits reuse; its wall time is reported apart
(`first_fit_sec`), as what a first fit in a fresh process costs.
umap-learn's seeds of a set run before ours: either library's fit right
after the other's runs slower (the other's idle worker threads), and the
untimed first fit takes that switch.
Fit-time-only sets (the 100,000-point one) skip the O(N^2) scores.

umap-learn's scores for a (set, seed, sizes, umap-learn version, params)
do not depend on ours: `peer_cache` (a JSON file) keeps them, and a later
call reuses them instead of refitting. Cached fit seconds were measured in
the run that stored them (on a shared machine, a noisy ratio).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from experiments.benchmark_umap_sets import PROTOCOL_SETS, SPLIT_SEED, Split
from experiments.cli import one_line
from latent_jax import ParametricUMAP
from latent_jax.data import DatasetUnavailableError
from latent_jax.data.clusters import synthetic_clusters
from latent_jax.evaluation import embedding_metrics
from latent_jax.train.workdir import write_json

MAX_POINTS = embedding_metrics.DEFAULT_MAX_POINTS  # the paper: 10,000
MEASURES = {  # key -> the table's row label
    "trust_k10": "trustworthiness, training set (k=10)",
    "trust_k5": "trustworthiness, training set (k=5, the paper's)",
    "heldout_trust_k10": "trustworthiness, held-out points (k=10)",
    "heldout_1nn": "1-NN accuracy, fit on train, scored on held-out",
    "heldout_5nn": "5-NN accuracy, fit on train, scored on held-out",
    "silhouette": "silhouette, training set",
    "fit_sec": "fit seconds",
    "compile_sec": "ours' timings_['compile'] (its first timed seed)",
    "first_fit_sec": "ours' untimed first fit on the set (compiling)",
    "transform_sec": "transform seconds, held-out points",
}
TIME_MEASURES = ("fit_sec", "compile_sec", "first_fit_sec", "transform_sec")
QUALITY = tuple(k for k in MEASURES if k not in TIME_MEASURES)
CLASS_MEASURES = ("heldout_1nn", "heldout_5nn", "silhouette")  # need labels
WHO = ("ours", "umap_learn")  # the flat dict's second key part


class SetResult(NamedTuple):
  """One set's scores, one dict (`MEASURES` keys) per seed."""
  name: str
  sizes: tuple[int, int, int]               # (train, held out, features)
  seeds: tuple[int, ...]
  ours: tuple[dict[str, float], ...]        # [len(seeds)]
  theirs: tuple[dict[str, float], ...] | None  # [len(seeds)]; None: no peer


def check_arguments(sets: Sequence[str], seeds: Sequence[int]) -> None:
  """ValueError naming what is wrong with `sets` / `seeds`."""
  unknown = [name for name in sets if name not in PROTOCOL_SETS]
  if unknown or not sets:
    raise ValueError(f"sets: unknown {unknown or 'empty list'}; known: "
                     f"{', '.join(PROTOCOL_SETS)}")
  bad = [seed for seed in seeds if isinstance(seed, bool)
         or not isinstance(seed, (int, np.integer)) or seed < 0]
  if bad or not seeds:
    raise ValueError(f"seeds: {bad or 'empty list'} are not integers >= 0; "
                     "give integer seeds, e.g. [0, 1, 2]")


def make_ours(seed: int, params: dict[str, Any]) -> ParametricUMAP:
  """`ParametricUMAP(random_state=seed, **params)`."""
  return ParametricUMAP(**{**params, "random_state": seed})


def make_peer(seed: int, params: dict[str, Any]):
  """umap-learn's `UMAP(random_state=seed, **params)`."""
  import umap  # pylint: disable=g-import-not-at-top
  return umap.UMAP(random_state=seed, **params)


def peer_version() -> str:
  import umap  # pylint: disable=g-import-not-at-top
  return umap.__version__


def _score(reducer, split: Split, fit_time_only: bool,
           compiles_transform: bool) -> dict[str, float]:
  """Fits `reducer` on split.train and scores it (`MEASURES` keys)."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # umap-learn: n_jobs with random_state
    started = time.perf_counter()
    train_embedding = np.asarray(reducer.fit_transform(split.train))
    result = {"fit_sec": time.perf_counter() - started}
    if "compile" in getattr(reducer, "timings_", {}):
      result["compile_sec"] = reducer.timings_["compile"]
    if compiles_transform:
      reducer.transform(split.test)
    started = time.perf_counter()
    test_embedding = np.asarray(reducer.transform(split.test))
    result["transform_sec"] = time.perf_counter() - started
  if fit_time_only:
    return result
  if not (np.isfinite(train_embedding).all()
          and np.isfinite(test_embedding).all()):
    print(f"non-finite embedding: {type(reducer).__name__} scores are NaN")
    return {**result, **dict.fromkeys(
        [k for k in QUALITY if split.train_labels is not None
         or k not in CLASS_MEASURES], float("nan"))}
  trust = embedding_metrics.trustworthiness
  result.update(
      trust_k10=trust(split.train, train_embedding, n_neighbors=10,
                      max_points=MAX_POINTS),
      trust_k5=trust(split.train, train_embedding, n_neighbors=5,
                     max_points=MAX_POINTS),
      heldout_trust_k10=trust(split.test, test_embedding, n_neighbors=10,
                              max_points=MAX_POINTS))
  if split.train_labels is not None:
    for k in (1, 5):
      result[f"heldout_{k}nn"] = embedding_metrics.heldout_knn_accuracy(
          train_embedding, split.train_labels, test_embedding,
          split.test_labels, n_neighbors=k)
    result["silhouette"] = embedding_metrics.silhouette(
        train_embedding, split.train_labels, max_points=MAX_POINTS)
  return result


class PeerCache:
  """umap-learn's scores by (set, seed, sizes, version, params), in a JSON
  file (None: kept in memory only)."""

  def __init__(self, path: str | None):
    self.path, self.entries = path, {}
    if path and os.path.exists(path):
      try:
        with open(path) as file:
          self.entries = json.load(file)
      except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"peer_cache: {path} is not a readable JSON file ({error}); "
            "delete it or pass another path") from error

  @staticmethod
  def key(name: str, seed: int, sizes: tuple[int, int, int],
          params: dict[str, Any]) -> str:
    train, test, features = sizes
    return (f"{name}|seed={seed}|n={train}+{test}x{features}|umap-learn="
            f"{peer_version()}|{json.dumps(params, sort_keys=True)}")

  def get(self, key: str) -> dict[str, float] | None:
    return self.entries.get(key)

  def put(self, key: str, scores: dict[str, float]) -> None:
    self.entries[key] = scores
    if self.path:
      os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
      write_json(self.path, self.entries)


def warm_ours(ours_params: dict[str, Any]) -> None:
  """Compiles what ours' timed fits share: XLA's first programs, and
  pynndescent's numba (ours uses it above 20,000 points)."""
  import pynndescent  # pylint: disable=g-import-not-at-top
  points = synthetic_clusters(4_200, seed=SPLIT_SEED, dims=64).points
  make_ours(0, {**ours_params, "n_epochs": 1}).fit(points[:500]).transform(
      points[:100])
  pynndescent.NNDescent(points, n_neighbors=15, random_state=0)


def warm_peer(peer_params: dict[str, Any]) -> None:
  """umap-learn's numba: exact kNN below 4,096 points, NN-descent above."""
  points = synthetic_clusters(4_200, seed=SPLIT_SEED, dims=64).points
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for num in (500, len(points)):
      make_peer(0, {**peer_params, "n_epochs": 5}).fit(
          points[:num]).transform(points[:100])


def _first_fit(split: Split, seed: int, ours_params: dict[str, Any]
               ) -> float:
  """Seconds of one untimed fit of ours on `split.train` (it compiles the
  programs the timed seeds then reuse)."""
  started = time.perf_counter()
  make_ours(seed, ours_params).fit(split.train)
  return time.perf_counter() - started


def protocol_scores(sets: Sequence[str], seeds: Sequence[int], *,
                    ours_params: dict[str, Any] | None = None,
                    peer: bool = True,
                    peer_params: dict[str, Any] | None = None,
                    peer_cache: str | None = None,
                    warm: bool = True, first_fit: bool = True
                    ) -> list[SetResult]:
  """The protocol's scores, one `SetResult` per set that loads.

  Args:
    sets: names of `PROTOCOL_SETS`; one that cannot be loaded here (tfds
      without its data) is skipped with one printed line.
    seeds: integer seeds; each fits both estimators once per set.
    ours_params: keyword arguments of `ParametricUMAP` (random_state: the
      seed); None: the defaults.
    peer: also fit (or take from `peer_cache`) umap-learn's `UMAP`.
    peer_params: keyword arguments of `umap.UMAP` (part of the cache key).
    peer_cache: JSON file of umap-learn's scores, read and extended.
    warm: warm both libraries up first (False: the caller has).
    first_fit: fit ours once, untimed, on each set before its timed seeds
      (its seconds: `first_fit_sec` of the first seed's scores), so that
      fit seconds compare warmed-up fits.
  Returns:
    `SetResult`s in the order of `sets`; `summary` flattens, `markdown`
    tabulates them.
  """
  check_arguments(sets, seeds)
  if peer:
    try:
      peer_version()
    except ImportError as error:
      raise ValueError("peer=True needs umap-learn (pip install umap-learn),"
                       " or pass peer=False") from error
  ours_params, peer_params = dict(ours_params or {}), dict(peer_params or {})
  cache = PeerCache(peer_cache) if peer else None
  ours_warm = peer_warm = not warm
  results = []
  for name in sets:
    spec = PROTOCOL_SETS[name]
    try:
      split = spec.load()
    except DatasetUnavailableError as error:
      print(f"skip {name}: {one_line(error).split('. ')[0]}", flush=True)
      continue
    if not ours_warm:
      warm_ours(ours_params)
      ours_warm = True
    sizes = (len(split.train), len(split.test), split.train.shape[1])
    print(f"== {name}: {spec.description}; {sizes[0]} train / {sizes[1]} "
          f"held out x {sizes[2]}", flush=True)
    # All of umap-learn's seeds first, then ours: a fit right after the
    # other library's runs slower (its idle worker threads still hold the
    # cores), and ours' untimed first fit absorbs that switch.
    theirs = []
    for seed in seeds if peer else ():
      key = PeerCache.key(name, seed, sizes, peer_params)
      scores = cache.get(key)
      if scores is None:
        if not peer_warm:
          warm_peer(peer_params)
          peer_warm = True
        scores = _score(make_peer(int(seed), peer_params), split,
                        spec.fit_time_only, False)
        cache.put(key, scores)
      theirs.append(scores)
    first_seconds = _first_fit(split, int(seeds[0]), ours_params) if (
        first_fit) else None
    ours = []
    for index, seed in enumerate(seeds):
      ours.append(_score(make_ours(int(seed), ours_params), split,
                         spec.fit_time_only, True))
      if index == 0 and first_seconds is not None:
        ours[0]["first_fit_sec"] = first_seconds  # reported once per set
      print(f"  seed {seed}: ours {_brief(ours[-1])}"
            + (f"; umap-learn {_brief(theirs[index])}" if peer else ""),
            flush=True)
    results.append(SetResult(name, sizes, tuple(int(s) for s in seeds),
                             tuple(ours), tuple(theirs) if peer else None))
  return results


def _brief(scores: dict[str, float]) -> str:
  return ", ".join(f"{k} {v:.3f}" for k, v in scores.items())


class Spread(NamedTuple):
  """One measure over seeds."""
  mean: float
  std: float  # sample std (0 for one seed)
  min: float
  max: float


def spread(values: Sequence[float]) -> Spread:
  values = [float(v) for v in values]
  std = statistics.stdev(values) if len(values) > 1 else 0.0
  return Spread(statistics.fmean(values), std, min(values), max(values))


def _measures(row: SetResult) -> list[str]:
  return [k for k in MEASURES if k in row.ours[0]]


def summary(rows: Sequence[SetResult]) -> dict[str, float]:
  """Flat numbers: `{set}/{ours|umap_learn}/{measure}_{mean|std|min|max}`,
  `{set}/ours_minus_umap_learn/{measure}` (means) and
  `{set}/fit_time_ratio_ours_over_umap_learn` (mean fit seconds)."""
  flat: dict[str, float] = {}
  for row in rows:
    for who, runs in zip(WHO, (row.ours, row.theirs)):
      for measure in _measures(row) if runs else ():
        if measure not in runs[0]:
          continue
        stats = spread([run[measure] for run in runs if measure in run])
        for part, value in stats._asdict().items():
          flat[f"{row.name}/{who}/{measure}_{part}"] = value
    if row.theirs:
      for measure in _measures(row):
        if measure in QUALITY:
          flat[f"{row.name}/ours_minus_umap_learn/{measure}"] = (
              flat[f"{row.name}/ours/{measure}_mean"]
              - flat[f"{row.name}/umap_learn/{measure}_mean"])
      flat[f"{row.name}/fit_time_ratio_ours_over_umap_learn"] = (
          flat[f"{row.name}/ours/fit_sec_mean"]
          / flat[f"{row.name}/umap_learn/fit_sec_mean"])
  return flat


def _cell(runs, measure: str) -> str:
  if not runs or measure not in runs[0]:
    return "-"
  stats = spread([run[measure] for run in runs if measure in run])
  digits = 2 if measure in TIME_MEASURES else 3
  return f"{stats.mean:.{digits}f} ± {stats.std:.{digits}f}"


def _comparison(row: SetResult, measure: str) -> str:
  """ours - theirs of the means; the ratio for the fit time."""
  if not row.theirs or measure not in ("fit_sec", *QUALITY):
    return "-"
  ours = spread([run[measure] for run in row.ours]).mean
  theirs = spread([run[measure] for run in row.theirs]).mean
  if measure == "fit_sec":
    return f"**{ours / theirs:.2f}x** ours / theirs"
  return f"{ours - theirs:+.3f}"


def markdown(rows: Sequence[SetResult]) -> str:
  """The protocol's table: one block of `MEASURES` rows per set, mean ±
  std over seeds, ours beside umap-learn, and their difference (ratio for
  the fit time)."""
  lines = ["| set | measure | latent_jax | umap-learn `UMAP` | ours - theirs |",
           "| --- | --- | --- | --- | --- |"]
  for row in rows:
    train, test, features = row.sizes
    label = (f"{row.name} ({train:,} / {test:,} x {features}; seeds "
             f"{', '.join(map(str, row.seeds))})")
    for measure in _measures(row):
      lines.append(f"| {label} | {MEASURES[measure]} | "
                   f"{_cell(row.ours, measure)} | "
                   f"{_cell(row.theirs, measure)} | "
                   f"{_comparison(row, measure)} |")
      label = ""
  return "\n".join(lines)
