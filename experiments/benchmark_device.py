"""`python -m experiments.benchmark device --out=DIR`: the prepared check of
one accelerator, in at most 8 minutes.

  python -m experiments.benchmark device --out=/tmp/device_check
  python -m experiments.benchmark device --smoke --out=/tmp/device_smoke

Writes DIR/device_report.json and DIR/device_report.md with one entry per
section of `SECTIONS` (experiments/benchmark_device_sections.py measures
them): the backend and device kind with its measured matmul rate; the
accelerator-only tests (`pytest -m accelerator`, in this process: pass/fail
counts); the training loop against a bare jitted `value_and_grad` for the
default heatmap VAE and the Keras reference preset at batch 64, 256, 1,024;
ensembles of 1, 8, 32, 64 members; the masked one-program latent sweep
against one run per latent size; a ParametricUMAP fit on 70,000 x 784
synthetic points (after 2,000 and 10,000) with a transform of 10,000.

Sizing rule: every section has its own budget (`Sizes.budgets`, seconds;
together under 8 minutes). A section runs its cheapest unit first, then
each next unit only if the time predicted from the units already measured
(`extrapolate`) fits in what is left of its budget; a unit that does not fit
is recorded under `skipped` with the prediction, so the report says what was
left out and why. A section that raises is recorded as "error" and the check
goes on: an accelerator's minutes are too scarce to lose the other sections.

`--smoke` runs the same code with tiny sizes on a CPU (the suite runs it, so
the accelerator run never meets code that has not run). Without an
accelerator and without `--smoke`, the command says so and exits non-zero.
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Any, Callable, NamedTuple

import jax

from latent_jax.train.workdir import write_json

SECTIONS = ("backend", "accelerator_tests", "training_loop", "ensemble",
            "masked_sweep", "umap")
REPORT_JSON, REPORT_MD = "device_report.json", "device_report.md"
NO_ACCELERATOR = ("benchmark device: no accelerator here (JAX backend "
                  "'cpu'); run it on a GPU or TPU, or add --smoke for the "
                  "tiny CPU rehearsal.")


class Sizes(NamedTuple):
  """What each section measures, and its budget."""
  budgets: dict[str, float]         # section -> seconds
  matmul_size: int                  # [n, n] @ [n, n] float32, the yardstick
  test_paths: tuple[str, ...]       # where pytest collects accelerator tests
  loop_archs: tuple[str, ...]       # presets (model.arch)
  loop_batches: tuple[int, ...]     # train.batch_size, ascending
  loop_steps: int                   # timed steps of the loop
  members: tuple[int, ...]          # ensemble sizes, ascending
  ensemble_steps: int               # steps per member
  ensemble_chunk: int               # steps per host call (the timed unit)
  sweep_grids: tuple[dict[str, Any], ...]  # ablation.py overrides, ascending
  sweep_smoke: bool                 # the ablation config's `smoke` switch
  umap_points: tuple[int, ...]      # fit sizes (x umap_features), ascending
  umap_features: int                # features per point
  umap_transform: int               # points transformed
  umap_params: dict[str, Any]       # ParametricUMAP keyword arguments
                                    # ({}: its defaults)
  run_arch: str | None              # ensemble and sweep model.arch; None:
                                    # their configs' (the conv `small`)


DEVICE = Sizes(
    budgets={"backend": 20, "accelerator_tests": 60, "training_loop": 120,
             "ensemble": 100, "masked_sweep": 60, "umap": 100},
    matmul_size=8192, test_paths=("tests",),
    loop_archs=("small", "keras_conv"), loop_batches=(64, 256, 1024),
    loop_steps=100, members=(1, 8, 32, 64), ensemble_steps=100,
    ensemble_chunk=25,
    sweep_grids=({"sweep.latent_dims": (2, 3), "ensemble.kl_weights":
                  (0.5, 1.0), "train.epochs": 1, "eval.iwae_samples": 0},
                 {"train.epochs": 2, "eval.iwae_samples": 0}),
    # 2,000 first: compilation and JIT warm-up, so that the line through
    # (2,000, 10,000) predicts 70,000 from the per-point cost.
    sweep_smoke=False, umap_points=(2_000, 10_000, 70_000),
    umap_features=784, umap_transform=10_000,
    umap_params={}, run_arch=None)

SMOKE = Sizes(
    budgets={"backend": 10, "accelerator_tests": 40, "training_loop": 60,
             "ensemble": 40, "masked_sweep": 40, "umap": 30},
    matmul_size=256, test_paths=("tests/train/test_chunk_accelerator.py",),
    # The same code at sizes where compilation is nearly all the cost, so
    # the smoke shares programs between sections: an MLP preset (compiled in
    # a fraction of a conv's time) at the smoke config's batch and data is
    # one training program for the loop, the ensemble of one and both
    # sweeps' latent-3 runs (compiled once where a persistent XLA cache is
    # on, as in the test suite). It is UMAP's encoder preset, so a 3-dim
    # UMAP shares most of its layer shapes (their initialisations compile
    # once); 64 features are too few for its PCA (an eigendecomposition of
    # the feature covariance, more than the rest of a 300-point fit).
    loop_archs=("umap_mlp",), loop_batches=(32,), loop_steps=4,
    members=(1, 2), ensemble_steps=4, ensemble_chunk=2,
    sweep_grids=({"sweep.latent_dims": (3,), "ensemble.kl_weights": (1.0,),
                  "ensemble.seeds": (0,), "train.epochs": 1,
                  "eval.iwae_samples": 0, "eval.figures": "loss_curves",
                  "log.tensorboard": False},),
    sweep_smoke=True, umap_points=(300,), umap_features=64,
    umap_transform=300,
    # One step, no layout or init phase: each phase is a program to compile.
    umap_params=dict(n_components=3, n_epochs=1, spectral_init=False,
                     layout_init=False),
    run_arch="umap_mlp")


def extrapolate(measured: list[tuple[float, float]], size: float) -> float:
  """Seconds predicted for `size` from measured (size, seconds) pairs.

  The line through the last two points (one point: proportional to size),
  never below the last measured time: a conservative guess that lets a
  section stop before it overruns its budget.
  """
  if not measured:
    return 0.0
  last_size, last_seconds = measured[-1]
  if len(measured) == 1:
    return last_seconds * max(size / last_size, 1.0)
  (size_a, seconds_a), (size_b, seconds_b) = measured[-2], measured[-1]
  slope = (seconds_b - seconds_a) / (size_b - size_a)
  return max(last_seconds, seconds_b + slope * (size - size_b))


class Section:
  """One section's clock, result rows and skipped units."""

  def __init__(self, name: str, budget: float):
    self.name, self.budget = name, budget
    self.started = time.perf_counter()
    self.rows: list[dict[str, Any]] = []
    self.skipped: list[dict[str, Any]] = []
    self.status, self.note = "ok", ""

  def remaining(self) -> float:
    return self.budget - (time.perf_counter() - self.started)

  def fits(self, unit: str, predicted: float) -> bool:
    """Whether to run `unit`: the first unit always runs (it is the timing
    the others are sized from); a later one if `predicted` seconds fit."""
    if not self.rows or predicted <= self.remaining():
      return True
    self.skipped.append({"unit": unit, "predicted_sec": round(predicted, 1),
                         "reason": f"predicted {predicted:.0f} s > the "
                                   f"{max(self.remaining(), 0):.0f} s left "
                                   f"of the section's {self.budget:.0f} s"})
    return False

  def report(self) -> dict[str, Any]:
    return {"status": self.status, "note": self.note,
            "seconds": round(time.perf_counter() - self.started, 2),
            "budget_sec": self.budget, "rows": self.rows,
            "skipped": self.skipped}


class Context(NamedTuple):
  """What every section reads."""
  sizes: Sizes
  smoke: bool
  out: str                  # the report folder (sections' scratch below it)
  matmul_rate: list[float]  # filled by the backend section (FLOP/s)


def run_device_check(out: str, smoke: bool = False,
                     sections: dict[str, Callable] | None = None
                     ) -> dict[str, Any]:
  """Runs every section into `out`; returns the report (also written as
  `out`/device_report.json and .md). `sections`: name -> fn(section,
  context), default the real ones (a test may pass stand-ins)."""
  if not smoke and jax.default_backend() == "cpu":
    raise ValueError(NO_ACCELERATOR)
  if sections is None:
    from experiments.benchmark_device_sections import SECTION_RUNNERS  # pylint: disable=g-import-not-at-top
    sections = SECTION_RUNNERS
  os.makedirs(out, exist_ok=True)
  sizes = SMOKE if smoke else DEVICE
  context = Context(sizes, smoke, out, [])
  started = time.perf_counter()
  report = {"smoke": smoke, "backend": jax.default_backend(),
            "device_kind": jax.devices()[0].device_kind,
            "total_budget_sec": sum(sizes.budgets.values()), "sections": {}}
  for name in SECTIONS:
    section = Section(name, sizes.budgets[name])
    print(f"== device check: {name} (budget {section.budget:.0f} s)",
          flush=True)
    try:
      sections[name](section, context)
    except Exception as error:  # pylint: disable=broad-except
      frames = traceback.format_exc().strip().splitlines()[-12:]
      section.status = "error"
      section.note = "\n".join([f"{type(error).__name__}: {error}", "```",
                                 *frames, "```"])
    report["sections"][name] = section.report()
    write_json(os.path.join(out, REPORT_JSON), report)  # partial on a kill
  report["total_sec"] = round(time.perf_counter() - started, 2)
  write_json(os.path.join(out, REPORT_JSON), report)
  with open(os.path.join(out, REPORT_MD), "w") as file:
    file.write(markdown(report))
  return report


def _shown(value: Any) -> str:
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value)


def markdown(report: dict[str, Any]) -> str:
  """The report as markdown: one table per section, skipped units listed."""
  mode = "smoke (tiny sizes)" if report["smoke"] else "full"
  lines = [f"# Device check: {report['backend']} ({report['device_kind']}),"
           f" {mode}, {report.get('total_sec', 0):.0f} s", ""]
  for name, section in report["sections"].items():
    lines += [f"## {name}: {section['status']} ({section['seconds']:.0f} s "
              f"of {section['budget_sec']:.0f} s)", ""]
    if section["note"]:
      lines += [section["note"], ""]
    columns = list(dict.fromkeys(k for row in section["rows"] for k in row))
    if columns:
      lines.append("| " + " | ".join(columns) + " |")
      lines.append("|" + " --- |" * len(columns))
      for row in section["rows"]:
        lines.append("| " + " | ".join(_shown(row.get(c, ""))
                                       for c in columns) + " |")
      lines.append("")
    for skipped in section["skipped"]:
      lines.append(f"- skipped {skipped['unit']}: {skipped['reason']}")
    if section["skipped"]:
      lines.append("")
  return "\n".join(lines)


def run_from_command(out: str | None, smoke: bool) -> dict[str, Any]:
  """`benchmark device --out=DIR [--smoke]`: prints the markdown report and
  returns each section's status, the report's path and the total seconds."""
  if not out:
    raise ValueError("benchmark device needs --out=DIR (the report folder).")
  report = run_device_check(out, smoke)
  print(markdown(report))
  summary = {name: section["status"]
             for name, section in report["sections"].items()}
  summary["report"] = os.path.join(out, REPORT_JSON)
  summary["total_sec"] = report["total_sec"]
  return summary
