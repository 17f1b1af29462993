"""The fit's orchestration: a failed spectral embedding drops the init phase;
the training programs compile before training starts."""

import jax
import numpy as np

from latent_jax import ParametricUMAP
from latent_jax.evaluation import embedding_metrics
from latent_jax.train import runner
from latent_jax.umap import fit as fit_module


def test_failed_spectral_embedding_without_layout_drops_the_init_phase(
    digits, monkeypatch, fast_umap):
  # The programs are built (and compiling) before the spectral embedding;
  # when the embedding fails and there is no layout, the init phase is
  # dropped and the programs rebuilt for the shorter schedule.
  monkeypatch.setattr(fit_module, "spectral_coordinates",
                      lambda *args, **kwargs: None)
  data = digits[0][:300]
  with_init = ParametricUMAP(**fast_umap).prepare_fit(data)
  assert with_init.plan.init_steps > 0  # the layout starts at random
  reducer = ParametricUMAP(layout_init=False, **fast_umap).fit(data)
  assert reducer.plan_.init_steps == 0
  assert len(reducer.loss_history_) >= 1
  assert np.all(np.isfinite(reducer.embedding_))
  # Trained on the cross-entropy alone, it still beats chance: 5-NN labels.
  assert embedding_metrics.knn_accuracy(reducer.embedding_,
                                        digits[1][:300]) > 0.5


def test_training_programs_are_compiled_before_training_starts(digits,
                                                                caplog,
                                                                fast_umap):
  # prepare_fit compiles the layout and both phases' programs on background
  # threads; training must then find them compiled, not compile again.
  data = digits[0][:300]
  reducer = ParametricUMAP(**fast_umap)
  with jax.log_compiles(True), caplog.at_level("WARNING"):
    fit = reducer.prepare_fit(data)
    fit.join()
    caplog.clear()
    state = runner.train(fit.init_state(), fit.phases(),
                         runner.Cadence(steps_per_call=100, log_every=0),
                         stop_on_sigterm=False)
  compiled = [r.getMessage() for r in caplog.records
              if "XLA compilation" in r.getMessage()]
  assert not [m for m in compiled if "device_loop" in m], compiled
  assert int(state.step) == fit.plan.total_steps
  # The compile-ahead threads are joined and dropped: nothing is left to
  # hold the fit (or stop the estimator from being copied).
  assert fit._compiling == []  # pylint: disable=protected-access
