"""The benchmark entry point names every benchmark; `benchmark device`
refuses a CPU without --smoke, sizes its sections by their own timings, and
its smoke run fills every section; `benchmark umap --protocol=paper` scores
like scikit-learn, reuses umap-learn's cached scores and refuses bad
flags."""

import ast
import json
import math
import os

import jax
import numpy as np
import pytest
from absl import flags
from sklearn import manifold, metrics
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from experiments import benchmark_device, benchmark_umap
from experiments import benchmark_device_sections as device_sections
from experiments import benchmark_umap_protocol as protocol
from experiments import benchmark_umap_sets
from experiments.benchmark_device import (NO_ACCELERATOR, REPORT_JSON,
                                          REPORT_MD, SECTIONS, Section,
                                          extrapolate, run_device_check)
from latent_jax.data import DatasetUnavailableError
from tests.umap.conftest import TINY


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


_ACCELERATOR_TESTS = """
import pytest

@pytest.fixture
def broken():
  raise RuntimeError("no device")

@pytest.mark.accelerator
def test_passes():
  pass

@pytest.mark.accelerator
def test_fails():
  assert 1 == 2

@pytest.mark.accelerator
def test_skips():
  pytest.skip("not here")

@pytest.mark.accelerator
def test_setup_fails(broken):
  pass

def test_not_an_accelerator_test():
  assert False, "ran without the accelerator mark"
"""


def test_accelerator_tests_count_each_outcome(tmp_path):
  # Outside tests/, so the CPU skip of tests/conftest.py does not apply.
  path = tmp_path / "test_device_check_outcomes.py"
  path.write_text(_ACCELERATOR_TESTS)
  section = Section("accelerator_tests", budget=10.0)
  sizes = benchmark_device.SMOKE._replace(test_paths=(str(path),))
  device_sections.accelerator_tests(section, benchmark_device.Context(
      sizes, True, str(tmp_path / "out"), []))
  [row] = section.rows
  assert {k: row[k] for k in ("passed", "failed", "skipped", "error")} == {
      "passed": 1, "failed": 1, "skipped": 1, "error": 1}
  assert row["returncode"] == 1 and section.status == "failed"
  assert "FAILED " in section.note and "::test_fails" in section.note
  assert "ERROR " in section.note and "no device" in section.note


@pytest.mark.smoke_benchmark
def test_device_smoke_fills_every_section(tmp_path):
  report = run_device_check(str(tmp_path), smoke=True)
  sections = report["sections"]
  assert list(sections) == list(SECTIONS)
  for name, section in sections.items():
    allowed = ("ok", "not available") if name == "masked_sweep" else ("ok",)
    assert section["status"] in allowed, (name, section["note"])
    assert section["rows"] or section["status"] == "not available", name
    for row in section["rows"]:  # every field measured
      numbers = [v for v in row.values() if isinstance(v, (int, float))]
      assert all(map(math.isfinite, numbers)), (name, row)
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
    cells = (len(ast.literal_eval(sweep["latent_dims"]))
             * sweep["members_per_dim"])
    assert sweep["summary_rows"] == sweep["summary_rows_per_size"] == cells
  umap = sections["umap"]["rows"][0]
  phases = sum(v for k, v in umap.items() if k.startswith("phase_"))
  assert umap["points"] == sizes.umap_points[0]
  assert 0 < phases <= umap["fit_sec"] + 0.05  # timings_ add up to the fit
  markdown = (tmp_path / REPORT_MD).read_text()
  for name in SECTIONS:
    assert f"## {name}: " in markdown


def _no_peer(seed, params):
  raise AssertionError(f"umap-learn refitted (seed {seed}, {params})")


def test_paper_protocol_scores_like_scikit_learn_and_caches_the_peer(
    tmp_path, monkeypatch, capsys):
  # The shapes of tests/umap's pipeline test (60 x 3, ParametricUMAP(**TINY)):
  # one compilation serves both. Held-out points spread wider, so a few
  # land among another class.
  train, train_labels, centres = make_blobs(
      60, n_features=3, centers=3, random_state=0, return_centers=True)
  test, test_labels = make_blobs(30, n_features=3, centers=centres,
                                 cluster_std=4.0, random_state=1)
  split = benchmark_umap_sets.Split(train, train_labels, test, test_labels)

  def unavailable():
    raise DatasetUnavailableError("gone: not prepared here. More text")

  monkeypatch.setitem(benchmark_umap_sets.PROTOCOL_SETS, "tiny",
                      benchmark_umap_sets.ProtocolSet("tiny", lambda: split))
  monkeypatch.setitem(benchmark_umap_sets.PROTOCOL_SETS, "gone",
                      benchmark_umap_sets.ProtocolSet("gone", unavailable))
  # PCA stands in for umap-learn (same calls; its embedding is known, so
  # the scores can be recomputed with scikit-learn's own functions).
  monkeypatch.setattr(protocol, "make_peer", lambda seed, params: PCA(2))
  monkeypatch.setattr(protocol, "peer_version", lambda: "stand-in")
  cache = str(tmp_path / "peer.json")
  ours_params = {k: v for k, v in TINY.items() if k != "random_state"}
  rows = protocol.protocol_scores(["gone", "tiny"], [0, 1],
                                  ours_params=ours_params, peer_cache=cache,
                                  warm=False, first_fit=True)
  assert "skip gone: gone: not prepared here\n" in capsys.readouterr().out
  [row] = rows
  assert row.name == "tiny" and row.sizes == (60, 30, 3)
  assert row.seeds == (0, 1)
  measured = set(protocol.MEASURES) - {"compile_sec", "first_fit_sec"}
  for run in row.ours + row.theirs:
    assert measured <= set(run) and all(map(np.isfinite, run.values()))
  # The untimed first fit is reported once, with the first seed.
  assert [("first_fit_sec" in run) for run in row.ours] == [True, False]
  assert row.ours[0]["first_fit_sec"] > 0
  train = PCA(2).fit(split.train)
  train_embedding = train.transform(split.train)
  test_embedding = train.transform(split.test)
  theirs = row.theirs[0]
  for k in (10, 5):
    assert theirs[f"trust_k{k}"] == pytest.approx(manifold.trustworthiness(
        split.train, train_embedding, n_neighbors=k), abs=1e-6)
  assert theirs["heldout_trust_k10"] == pytest.approx(
      manifold.trustworthiness(split.test, test_embedding, n_neighbors=10),
      abs=1e-6)
  for k in (1, 5):
    assert theirs[f"heldout_{k}nn"] == pytest.approx(KNeighborsClassifier(
        k).fit(train_embedding, split.train_labels).score(
            test_embedding, split.test_labels))
    assert 0.5 < theirs[f"heldout_{k}nn"] < 1.0
  assert theirs["silhouette"] == pytest.approx(metrics.silhouette_score(
      train_embedding, split.train_labels), abs=1e-5)

  numbers = protocol.summary(rows)
  fits = [run["fit_sec"] for run in row.ours]
  assert numbers["tiny/ours/fit_sec_mean"] == pytest.approx(np.mean(fits))
  assert numbers["tiny/ours/fit_sec_std"] == pytest.approx(np.std(fits,
                                                                  ddof=1))
  assert numbers["tiny/ours/trust_k5_min"] <= numbers[
      "tiny/ours/trust_k5_max"]
  assert numbers["tiny/fit_time_ratio_ours_over_umap_learn"] == (
      pytest.approx(np.mean(fits) / numbers["tiny/umap_learn/fit_sec_mean"]))
  assert numbers["tiny/ours_minus_umap_learn/heldout_5nn"] == pytest.approx(
      numbers["tiny/ours/heldout_5nn_mean"] - theirs["heldout_5nn"])
  table = protocol.markdown(rows)
  assert all(label in table for label in protocol.MEASURES.values())
  assert "x** ours / theirs" in table

  # umap-learn's scores come from the cache; other umap-learn settings
  # are another key (ours: a stand-in now, its fits are tested above).
  monkeypatch.setattr(protocol, "make_peer", _no_peer)
  monkeypatch.setattr(protocol, "make_ours", lambda seed, params: PCA(2))
  again = protocol.protocol_scores(["tiny"], [1], ours_params=ours_params,
                                   peer_cache=cache, warm=False,
                                   first_fit=False)
  assert again[0].theirs == (row.theirs[1],)
  with pytest.raises(AssertionError, match="umap-learn refitted"):
    protocol.protocol_scores(["tiny"], [1], ours_params=ours_params,
                             peer_params={"n_neighbors": 5},
                             peer_cache=cache, warm=False)


def test_paper_protocol_refuses_bad_sets_seeds_flags_and_cache(tmp_path):
  with pytest.raises(ValueError, match=r"sets: unknown \['nope'\]; known: "
                     r"mnist, fashion_mnist, digits"):
    protocol.check_arguments(["nope"], [0])
  for seeds in (["0"], [1.5], [True], [-1], []):
    with pytest.raises(ValueError, match="seeds: .* integers >= 0"):
      protocol.check_arguments(["digits"], seeds)
  with pytest.raises(flags.ValidationError,
                     match=r"--umap_sets: unknown \['clusters'\] for "
                     r"--protocol=default; accepted: digits, mnist_like"):
    benchmark_umap.check_umap_sets({"protocol": "default",
                                    "umap_sets": ["clusters"]})
  assert benchmark_umap.check_umap_sets({"protocol": "paper",
                                         "umap_sets": ["clusters"]})
  with pytest.raises(flags.ValidationError, match=r"\['a'\] are not "
                     "integers >= 0; accepted: comma-separated integers"):
    benchmark_umap.check_umap_seeds(["0", "a"])
  with pytest.raises(flags.ValidationError, match="no seeds given"):
    benchmark_umap.check_umap_seeds([])
  with pytest.raises(ValueError, match=r"should be one of <default\|paper>"):
    flags.FLAGS["protocol"].parser.parse("nope")
  broken = tmp_path / "cache.json"
  broken.write_text("{not json")
  with pytest.raises(ValueError, match="peer_cache: .* not a readable JSON"):
    protocol.PeerCache(str(broken))
