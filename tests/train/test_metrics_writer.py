"""metrics.jsonl and its TensorBoard mirror: the event files of a run hold
the same scalars at the same steps, and the figures' images; a TensorBoard
failure is one warning, never a lost record."""

import glob
import os
import struct
import sys

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from latent_jax.train import metrics_writer
from latent_jax.train.metrics_writer import (MetricsWriter, read_records,
                                             scalar_tags)


def _read_events(logdir):
  """Every Event in the TFRecord files under `logdir` (tensorboardX ships no
  reader; the framing is length u64, its crc u32, data, data crc u32)."""
  events = []
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    with open(path, "rb") as file:
      data = file.read()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      offset += 12
      events.append(event_pb2.Event.FromString(
          data[offset:offset + length]))
      offset += length + 4
  return events


def _scalars(logdir):
  """{(tag, step): value} of every scalar event."""
  return {(value.tag, event.step): value.simple_value
          for event in _read_events(logdir) for value in event.summary.value
          if value.HasField("simple_value")}


def test_a_runs_events_hold_its_metrics_and_images(vae_heatmaps_run):
  _, workdir, _ = vae_heatmaps_run
  records = read_records(workdir)
  scalars = _scalars(os.path.join(workdir, "tensorboard"))
  expected = {(tag, record["step"]): value for record in records
              for tag, value in scalar_tags(record["split"], record).items()}
  assert {"train/loss", "test/neg_elbo", "train/learning_rate"} <= {
      tag for tag, _ in expected}
  assert set(scalars) == set(expected)
  np.testing.assert_allclose([scalars[key] for key in expected],
                             list(expected.values()), rtol=1e-6)
  # The final evaluation's figures as PNG images, at the run's last step.
  images = {(value.tag, event.step): value.image for event in _read_events(
      os.path.join(workdir, "tensorboard")) for value in event.summary.value
            if value.HasField("image")}
  last = max(record["step"] for record in records)
  assert set(images) == {("reconstructions", last), ("samples", last)}
  for image in images.values():
    assert image.encoded_image_string.startswith(b"\x89PNG")
    assert min(image.height, image.width) > 50


def test_scalar_tags_name_split_metric_and_member():
  record = {"step": 8, "member": 3, "kl_weight": 0.5, "loss": np.float32(2.5),
            "phase": "umap", "nan": float("nan"), "flag": True}
  tags = scalar_tags("train", record)
  assert tags.keys() == {"member_3/train/kl_weight", "member_3/train/loss",
                         "member_3/train/nan"}
  assert tags["member_3/train/loss"] == 2.5 and np.isnan(
      tags["member_3/train/nan"])
  assert scalar_tags("test", {"step": 1, "recon": 4}) == {"test/recon": 4.0}


def test_a_resumed_run_purges_the_events_past_its_checkpoint(tmp_path):
  first = MetricsWriter(str(tmp_path))
  for step in (4, 8, 12):
    first.write(step, "train", {"loss": float(step)})
  first.tensorboard.close()
  resumed = MetricsWriter(str(tmp_path))
  resumed.truncate_after(8)
  resumed.write(12, "train", {"loss": -1.0})
  resumed.tensorboard.close()
  assert [r["loss"] for r in read_records(str(tmp_path))] == [4.0, 8.0, -1.0]
  starts = [event.session_log.status for event in _read_events(
      tmp_path / "tensorboard") if event.step == 9]
  assert starts == [event_pb2.SessionLog.START]  # TensorBoard's purge mark


@pytest.mark.parametrize("cause", ["unwritable directory",
                                   "tensorboardX missing"])
def test_a_tensorboard_failure_is_one_warning(tmp_path, monkeypatch, cause):
  warnings = []
  monkeypatch.setattr(metrics_writer.logging, "warning",
                      lambda *args: warnings.append(args[0] % args[1:]))
  if cause == "unwritable directory":
    (tmp_path / "tensorboard").write_text("a file where the directory goes")
  else:
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
  writer = MetricsWriter(str(tmp_path))
  for step in (1, 2):
    writer.write(step, "train", {"loss": 1.0})
  writer.tensorboard.figure(2, "samples", None)
  assert [r["step"] for r in read_records(str(tmp_path))] == [1, 2]
  assert len(warnings) == 1 and "config.log.tensorboard=False" in warnings[0]
  assert not writer.tensorboard.enabled


def test_tensorboard_off_writes_no_events(tmp_path):
  MetricsWriter(str(tmp_path), tensorboard=False).write(1, "test", {"a": 1})
  assert not os.path.exists(tmp_path / "tensorboard")
  assert read_records(str(tmp_path)) == [{"step": 1, "split": "test",
                                          "a": 1}]
