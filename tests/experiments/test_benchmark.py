"""The benchmark entry point names every benchmark; `benchmark device`
refuses a CPU without --smoke, sizes its sections by their own timings, and
its smoke run fills every section."""

import json
import math
import os

import jax
import pytest

from experiments import benchmark_device
from experiments.benchmark_device import (NO_ACCELERATOR, REPORT_JSON,
                                          REPORT_MD, SECTIONS, Section,
                                          extrapolate, run_device_check)


def test_device_without_an_accelerator_says_so_and_fails(run_python,
                                                         tmp_path):
  # Importing experiments.benchmark imports every benchmark module, so a
  # benchmark broken by a library change fails here, not on a device.
  result = run_python("-m", "experiments.benchmark", "device",
                      f"--out={tmp_path}")
  assert result.returncode != 0
  assert NO_ACCELERATOR in result.stdout
  assert not os.listdir(tmp_path)
  from experiments import benchmark  # pylint: disable=g-import-not-at-top
  assert list(benchmark.BENCHMARKS) == ["vae", "ensemble", "umap", "device"]
  with pytest.raises(Exception, match=r"\{vae\|ensemble\|umap\|device\}"):
    benchmark.main(["benchmark", "nope"])


def test_extrapolate_and_the_section_budget():
  assert extrapolate([], 8) == 0.0
  assert extrapolate([(1, 2.0)], 8) == 16.0  # proportional from one point
  assert extrapolate([(1, 2.0), (8, 3.0)], 64) == pytest.approx(11.0)
  assert extrapolate([(1, 5.0), (8, 3.0)], 64) == 3.0  # never below the last
  section = Section("ensemble", budget=10.0)
  assert section.fits("1 member", 1e9)  # the first unit always runs
  section.rows.append({"members": 1})
  assert section.fits("8 members", 1.0)
  assert not section.fits("64 members", 100.0)
  assert section.skipped[0]["unit"] == "64 members"
  assert "predicted 100 s" in section.skipped[0]["reason"]


def test_a_failing_section_is_recorded_and_the_rest_run(tmp_path):
  def broken(section, context):
    raise RuntimeError("out of memory")

  def fine(section, context):
    section.rows.append({"value": 1.5})

  stand_ins = {name: broken if name == "ensemble" else fine
               for name in SECTIONS}
  report = run_device_check(str(tmp_path), smoke=True, sections=stand_ins)
  assert list(report["sections"]) == list(SECTIONS)
  assert report["sections"]["ensemble"]["status"] == "error"
  assert "RuntimeError: out of memory" in report["sections"]["ensemble"][
      "note"]
  assert all(report["sections"][n]["status"] == "ok"
             for n in SECTIONS if n != "ensemble")
  with open(tmp_path / REPORT_JSON) as file:
    assert json.load(file) == report
  with pytest.raises(ValueError, match="no accelerator"):
    run_device_check(str(tmp_path), smoke=False)


@pytest.mark.smoke_benchmark
def test_device_smoke_fills_every_section(tmp_path):
  report = run_device_check(str(tmp_path), smoke=True)
  sections = report["sections"]
  assert list(sections) == list(SECTIONS)
  for name, section in sections.items():
    allowed = ("ok", "not available") if name == "masked_sweep" else ("ok",)
    assert section["status"] in allowed, (name, section["note"])
    assert section["rows"] or section["status"] == "not available", name
  sizes = benchmark_device.SMOKE
  backend = sections["backend"]["rows"][0]
  assert backend["backend"] == jax.default_backend()
  assert backend["matmul_flops_per_sec"] > 0
  tests = sections["accelerator_tests"]["rows"][0]
  assert tests["failed"] == tests["error"] == 0
  assert tests["passed"] + tests["skipped"] >= 3
  # Each unit is measured or skipped by the budget (a loaded machine).
  loop = sections["training_loop"]["rows"]
  units = [f"{r['arch']} batch {r['batch']}" for r in loop] + [
      s["unit"] for s in sections["training_loop"]["skipped"]]
  assert set(units) == {f"{a} batch {b}" for a in sizes.loop_archs
                        for b in sizes.loop_batches}
  assert all(0 < r["loop_over_bare"] < math.inf for r in loop)
  members = sections["ensemble"]["rows"]
  assert [r["members"] for r in members] == list(
      sizes.members[:len(members)])
  # The ensemble of one is the single run every ratio is taken against.
  assert members[0]["wall_over_one_model"] == 1.0
  assert members[0]["wall_ratio_sequential_over_ensemble"] == 1.0
  if sections["masked_sweep"]["status"] == "ok":
    sweep = sections["masked_sweep"]["rows"][0]
    assert sweep["summary_rows"] == sweep["summary_rows_per_size"] == 2
  umap = sections["umap"]["rows"][0]
  phases = sum(v for k, v in umap.items() if k.startswith("phase_"))
  assert umap["points"] == sizes.umap_points[0]
  assert 0 < phases <= umap["fit_sec"] + 0.05  # timings_ add up to the fit
  markdown = (tmp_path / REPORT_MD).read_text()
  for name in SECTIONS:
    assert f"## {name}: " in markdown
