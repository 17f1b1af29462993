"""A fit's clock and progress lines: laps add up, ETAs count down."""

import logging

import pytest

from latent_jax.umap import progress


def test_laps_add_up_and_chunks_log_the_phase_eta(caplog, monkeypatch):
  clock = iter([0.0, 1.0, 3.0, 4.0, 6.0])
  monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
  with caplog.at_level(logging.INFO, logger=progress.LOGGER.name):
    run = progress.Progress(verbose=True)       # t = 0
    assert run.lap("setup") == 1.0              # t = 1
    run.lap("knn")                              # t = 3
    run.chunk("umap", taken=10, done=10, phase_steps=30, loss=0.5)  # t = 4
    run.chunk("umap", taken=10, done=20, phase_steps=30, loss=0.25)  # t = 6
  assert run.timings == {"setup": 1.0, "knn": 2.0, "umap": 3.0}
  lines = [r.getMessage() for r in caplog.records]
  # 10 steps/s, then 20 steps in 3 s: the remaining 10 take 1.5 s.
  assert lines[0].endswith("umap phase: step 10/30 | loss 0.5000 | "
                           "10 steps/s | ETA 2.0 s")
  assert lines[1].endswith("ETA 1.5 s")


@pytest.mark.parametrize("verbose, level", [(True, logging.INFO),
                                            (False, logging.DEBUG)])
def test_lines_are_info_when_verbose_else_debug(caplog, verbose, level):
  with caplog.at_level(logging.DEBUG, logger=progress.LOGGER.name):
    progress.log(verbose, "hello")
  assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
      (level, "[ParametricUMAP] hello")]
