"""Latent paths: closed-form geometry, and the figure decodes them once."""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from latent_jax.evaluation.trajectories import (line_path, plot_trajectories,
                                                rotation_path)


def test_line_path_is_evenly_spaced_between_the_end_points():
  path = line_path(np.array([0.0, 1.0, 2.0]), np.array([4.0, 1.0, -2.0]), 5)
  np.testing.assert_allclose(path[0], [0, 1, 2])
  np.testing.assert_allclose(path[-1], [4, 1, -2])
  steps = np.diff(path, axis=0)
  np.testing.assert_allclose(steps, np.broadcast_to(steps[0], steps.shape),
                             atol=1e-6)


def test_rotation_keeps_the_radius_and_the_other_dims():
  start = np.array([3.0, 4.0, 0.7])
  path = rotation_path(start, plane=(0, 1), steps=8, angle=np.pi)
  np.testing.assert_allclose(np.hypot(path[:, 0], path[:, 1]), 5.0,
                             rtol=1e-6)
  np.testing.assert_allclose(path[:, 2], 0.7)
  np.testing.assert_allclose(path[-1, :2], [-3.0, -4.0], atol=1e-5)
  centred = rotation_path(start, center=np.array([1.0, 1.0, 0.0]), steps=3,
                          angle=2 * np.pi)
  np.testing.assert_allclose(centred[-1], start, atol=1e-5)


def test_trajectory_figure_decodes_every_path_in_one_call(tmp_path,
                                                           fake_decoder):
  decode = fake_decoder()

  codes = np.random.default_rng(0).normal(size=(300, 3))
  paths = [("line", line_path(codes[0], codes[1], 6)),
           ("rotation", rotation_path(codes[1], steps=4))]
  out = tmp_path / "traj.png"
  plt.close(plot_trajectories(decode, codes, codes[:, 2], "c", paths, out))
  assert len(decode.calls) == 1 and decode.calls[0].shape == (10, 3)
  assert mpimg.imread(out)[..., :3].std() > 0.02
  with pytest.raises(ValueError, match="path"):
    plot_trajectories(decode, codes, codes[:, 2], "c", [], out)
