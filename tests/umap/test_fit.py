"""The fit's orchestration: a failed spectral embedding drops the init phase;
the training programs compile before training starts."""

import jax
import numpy as np

from latent_jax import ParametricUMAP
from latent_jax.evaluation import embedding_metrics
from latent_jax.umap import estimator as estimator_module


def test_failed_spectral_embedding_without_layout_drops_the_init_phase(
    digits, monkeypatch, fast_umap):
  # The trainer is built (and compiling) before the spectral embedding; when
  # the embedding fails and there is no layout, the init phase is dropped
  # and the trainer rebuilt for the shorter schedule.
  monkeypatch.setattr(estimator_module, "spectral_coordinates",
                      lambda *args, **kwargs: None)
  data = digits[0][:300]
  with_init = ParametricUMAP(**fast_umap)
  with_init._setup(data)  # pylint: disable=protected-access
  assert with_init.plan_.init_steps > 0  # the layout starts at random
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
  # _setup compiles the layout and both phases' programs on a background
  # thread; training must then find them compiled, not compile again.
  data = digits[0][:300]
  reducer = ParametricUMAP(**fast_umap)
  with jax.log_compiles(True), caplog.at_level("WARNING"):
    reducer._setup(data)  # pylint: disable=protected-access
    trainer = reducer.make_trainer(data)
    trainer._compiling.join()  # pylint: disable=protected-access
    caplog.clear()
    state = trainer.run(trainer.init_state())
  compiled = [r.getMessage() for r in caplog.records
              if "XLA compilation" in r.getMessage()]
  assert not [m for m in compiled if "device_loop" in m], compiled
  assert int(state.step) == reducer.plan_.total_steps
