"""The sections of `benchmark device` (experiments/benchmark_device.py says
how they are sized): each is `fn(section, context)` and appends result rows
to `section.rows`, one per measured unit.

They reuse the single benchmarks: `measure_vae` (benchmark_vae.py), the
ensemble benchmark's timed run (benchmark_ensemble.py), the UMAP
benchmark's transform timing (benchmark_umap.py).
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from typing import Any

import jax

from experiments.benchmark_device import Context, Section, extrapolate
from experiments.benchmark_ensemble import _Run
from experiments.benchmark_umap import _transform_seconds
from experiments.benchmark_vae import measure_vae
from experiments.configs import ablation, vae_heatmaps
from experiments.timing import matmul_flops_per_sec
from latent_jax.data.clusters import synthetic_clusters

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def backend(section: Section, context: Context) -> None:
  """Backend, device kind and count, and the float32 matmul rate."""
  size = context.sizes.matmul_size
  rate = matmul_flops_per_sec(size)
  context.matmul_rate.append(rate)
  device = jax.devices()[0]
  section.rows.append({
      "backend": jax.default_backend(), "device_kind": device.device_kind,
      "device_count": jax.device_count(), "jax": jax.__version__,
      "matmul_size": size, "matmul_flops_per_sec": rate})


class _Outcomes:
  """A pytest plugin that counts outcomes: a test's call passes, fails or
  skips; a failing setup, teardown or collection is an error."""

  def __init__(self):
    self.counts = dict.fromkeys(("passed", "failed", "skipped", "error"), 0)
    self.failures: list[str] = []

  def _failed(self, report, kind: str) -> None:
    self.counts[kind] += 1
    self.failures.append(f"{kind.upper()} {report.nodeid}\n"
                         + "\n".join(report.longreprtext.splitlines()[-12:]))

  def pytest_runtest_logreport(self, report) -> None:
    if report.failed:
      self._failed(report, "failed" if report.when == "call" else "error")
    elif report.skipped and report.when in ("setup", "call"):
      self.counts["skipped"] += 1
    elif report.passed and report.when == "call":
      self.counts["passed"] += 1

  def pytest_collectreport(self, report) -> None:
    if report.failed:
      self._failed(report, "error")


def accelerator_tests(section: Section, context: Context) -> None:
  """`pytest -m accelerator` in this process: pass/fail/skip/error counts.

  In process: the tests share the device this process already holds (JAX
  preallocates 75% of a GPU's memory per process, so a second process
  would find most of it taken), and the check pays no second start-up.
  """
  import pytest  # pylint: disable=g-import-not-at-top
  outcomes = _Outcomes()
  paths = [os.path.join(REPO, path) for path in context.sizes.test_paths]
  code = int(pytest.main(
      # Without the plugins that only cost time here: the cache, the
      # unraisable-exception hook's full garbage collections, hypothesis.
      ["-m", "accelerator", "-q", "-p", "no:cacheprovider", "-p",
       "no:unraisableexception", "-p", "no:hypothesispytest",
       f"--rootdir={REPO}", f"--config-file={REPO}/pyproject.toml",
       f"--basetemp={os.path.join(context.out, 'accelerator_tests')}",
       *paths], plugins=[outcomes]))
  counts = outcomes.counts
  section.rows.append({**counts, "returncode": code, "summary": ", ".join(
      f"{number} {kind}" for kind, number in counts.items() if number)})
  # 0: all passed; 5: none collected (every one deselected).
  if code not in (0, 5) or counts["failed"] or counts["error"]:
    section.status = "failed"
    section.note = "\n\n".join(outcomes.failures[:5]) or (
        f"pytest exited with code {code}")


def training_loop(section: Section, context: Context) -> None:
  """The loop against bare `value_and_grad`, per preset and batch size."""
  sizes = context.sizes
  first_unit_seconds = 0.0
  for arch in sizes.loop_archs:
    measured: list[tuple[float, float]] = []
    for batch in sizes.loop_batches:
      # A preset's first unit: guessed as long as the previous preset's.
      predicted = (extrapolate(measured, batch) if measured
                   else first_unit_seconds)
      if not section.fits(f"{arch} batch {batch}", predicted):
        break
      started = time.perf_counter()
      result = measure_vae(arch, batch, sizes.loop_steps, smoke=context.smoke,
                           matmul_rate=context.matmul_rate[0]
                           if context.matmul_rate else None)
      seconds = time.perf_counter() - started
      if not measured:
        first_unit_seconds = seconds
      measured.append((batch, seconds))
      section.rows.append({
          "arch": arch, "batch": batch,
          "loop_images_per_sec": result["full_loop_images_per_sec"],
          "bare_images_per_sec": result["bare_value_and_grad_images_per_sec"],
          "loop_over_bare": result["loop_over_bare"],
          "loop_fraction_of_matmul_rate":
              result["loop_fraction_of_matmul_rate"],
          "train_flops_per_image": result["model_train_flops_per_image"],
          "unit_sec": seconds})


def ensemble(section: Section, context: Context) -> None:
  """M members in one program against M single runs (the single run is
  measured once, as the ensemble of one; M runs in turn take M times its
  wall time on a device of their own)."""
  from latent_jax.train.ensemble import Member, resolve_conv_batching  # pylint: disable=g-import-not-at-top
  from latent_jax.train.setup import load_configured_dataset  # pylint: disable=g-import-not-at-top
  sizes = context.sizes
  config = vae_heatmaps.get_config(",".join(
      ["smoke"] * context.smoke
      + [f"arch={sizes.run_arch}"] * bool(sizes.run_arch)))
  dataset = load_configured_dataset(config)
  images = jax.device_put(dataset.train_images)
  conv_batching = resolve_conv_batching(config.ensemble.conv_batching)
  weights = (0.25, 0.5, 1.0, 2.0)
  batch = config.train.batch_size
  measured: list[tuple[float, float]] = []
  single = None
  for count in sizes.members:
    if not section.fits(f"{count} members", extrapolate(measured, count)):
      break
    members = [Member(i, weights[i % len(weights)], i // len(weights))
               for i in range(count)]
    run = _Run(config, dataset, images, members, conv_batching)
    for taken in range(0, sizes.ensemble_steps, sizes.ensemble_chunk):
      run.run(min(sizes.ensemble_chunk, sizes.ensemble_steps - taken))
    rate = batch * sizes.ensemble_chunk / statistics.median(
        run.chunk_seconds[1:])
    single = single or (run.wall_seconds, rate)  # the first unit: 1 member
    measured.append((count, run.wall_seconds))
    section.rows.append({
        "members": count, "conv_batching": conv_batching,
        "wall_sec": run.wall_seconds,
        "wall_over_one_model": run.wall_seconds / single[0],
        "wall_ratio_sequential_over_ensemble":
            count * single[0] / run.wall_seconds,
        "images_per_sec_per_member": rate,
        "per_member_rate_over_sequential": rate / (single[1] / count)})


def run_latent_sweep(config, workdir: str, one_program: bool) -> int:
  """THE ONE PLACE the device check calls the latent sweep: trains every
  latent dim of `config` into `workdir` (one program with `one_program`,
  else one run per latent size) and writes its summary; returns the
  summary's row count. Raises NotImplementedError when this checkout has
  no `sweep.one_program` (the section then reports "not available")."""
  from latent_jax.runs import sweep  # pylint: disable=g-import-not-at-top
  if "one_program" not in config.sweep or not hasattr(sweep,
                                                      "is_one_program"):
    raise NotImplementedError("sweep.one_program is not in this checkout.")
  config.unlock()
  config.sweep.one_program = one_program
  config.lock()
  dims = sweep.latent_dims(config)
  sweep.run_sweep(config, workdir, dims)
  sweep.write_summary(workdir, dims, config.eval.num_images, one_program)
  with open(os.path.join(workdir, "summary.csv")) as file:
    return sum(1 for _ in file) - 1  # the header line


def _sweep_config(sizes, overrides: dict[str, Any]):
  config = ablation.get_config("smoke" if sizes.sweep_smoke else None)
  config.unlock()
  if sizes.run_arch:
    config.model.arch = sizes.run_arch
  for path, value in overrides.items():
    part, field = path.split(".")
    config[part][field] = value
  config.lock()
  return config


def masked_sweep(section: Section, context: Context) -> None:
  """The one-program masked sweep against one run per latent size."""
  sizes = context.sizes
  measured: list[tuple[float, float]] = []
  for index, overrides in enumerate(sizes.sweep_grids):
    config = _sweep_config(sizes, overrides)
    dims = len(config.sweep.latent_dims)
    if not section.fits(f"grid {index} ({dims} latent dims)",
                        extrapolate(measured, dims)):
      break
    times, rows = {}, {}
    started = time.perf_counter()
    for one_program in (True, False):  # one_program first: fails fast
      workdir = os.path.join(context.out, "sweep",
                             f"grid{index}_one_program_{one_program}")
      shutil.rmtree(workdir, ignore_errors=True)
      began = time.perf_counter()
      try:
        rows[one_program] = run_latent_sweep(
            _sweep_config(sizes, overrides), workdir, one_program)
      except NotImplementedError as missing:
        section.status, section.note = "not available", str(missing)
        return
      times[one_program] = time.perf_counter() - began
    measured.append((dims, time.perf_counter() - started))
    section.rows.append({
        "grid": index, "latent_dims": str(tuple(config.sweep.latent_dims)),
        "members_per_dim": len(config.ensemble.kl_weights or (1,))
                           * len(config.ensemble.seeds or (1,)),
        "epochs": config.train.epochs,
        "one_program_sec": times[True], "per_size_sec": times[False],
        "per_size_over_one_program": times[False] / times[True],
        "summary_rows": rows[True], "summary_rows_per_size": rows[False]})


def umap(section: Section, context: Context) -> None:
  """ParametricUMAP fits: phase times (`timings_`), transform time."""
  from latent_jax import ParametricUMAP  # pylint: disable=g-import-not-at-top
  sizes = context.sizes
  measured: list[tuple[float, float]] = []
  for num in sizes.umap_points:
    if not section.fits(f"{num} points", extrapolate(measured, num)):
      break
    data = synthetic_clusters(num, seed=0, dims=sizes.umap_features).points
    started = time.perf_counter()
    reducer = ParametricUMAP(random_state=0, **sizes.umap_params)
    reducer.fit(data)
    fit_seconds = time.perf_counter() - started
    transform_seconds = _transform_seconds(reducer.transform, data,
                                           sizes.umap_transform)
    measured.append((num, time.perf_counter() - started))
    section.rows.append({
        "points": num, "features": data.shape[1], "fit_sec": fit_seconds,
        **{f"phase_{phase}_sec": seconds
           for phase, seconds in reducer.timings_.items()},
        "edges_per_sec": getattr(reducer, "edges_per_second_", float("nan")),
        "transform_points": sizes.umap_transform,
        "transform_sec": transform_seconds})


SECTION_RUNNERS = {"backend": backend,
                   "accelerator_tests": accelerator_tests,
                   "training_loop": training_loop, "ensemble": ensemble,
                   "masked_sweep": masked_sweep, "umap": umap}
