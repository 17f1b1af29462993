#!/usr/bin/env python3
"""Final parameters of every run kind's smoke config, to compare two commits.

A restructuring must change no numbers: record at the old commit, record at
the new one, compare.

    python tools/param_fingerprint.py record --out=/tmp/before.npz   # old commit
    python tools/param_fingerprint.py record --out=/tmp/after.npz    # new commit
    python tools/param_fingerprint.py compare /tmp/before.npz /tmp/after.npz

It runs the public command lines only (`experiments.train`, `experiments.sweep`)
and reads each run's latest orbax checkpoint as raw arrays, so it works on
either side of a change to the library's internals.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

RUNS = {  # name -> (module, config arguments)
    "vae": ("experiments.train", ["--config=experiments/configs/vae_heatmaps.py:smoke"]),
    "ae": ("experiments.train", ["--config=experiments/configs/ae_heatmaps.py:smoke"]),
    "ensemble": ("experiments.train", [
        "--config=experiments/configs/vae_heatmaps.py:smoke",
        "--config.ensemble.kl_weights=(0.5,2.0)", "--config.ensemble.seeds=(0,1)"]),
    "sweep": ("experiments.sweep", ["--config=experiments/configs/ablation.py:smoke"]),
    "umap_digits": ("experiments.train", ["--config=experiments/configs/umap_digits.py:smoke"]),
}


def _checkpoint_arrays(workdir: str) -> dict[str, np.ndarray]:
  import orbax.checkpoint as ocp
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  manager = ocp.CheckpointManager(directory, item_names=("state", "meta"))
  step = manager.latest_step()
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(None)))
  manager.close()
  flat = {}

  def walk(prefix, tree):
    if isinstance(tree, dict):
      for key, value in tree.items():
        walk(f"{prefix}/{key}", value)
    elif isinstance(tree, (list, tuple)):
      for i, value in enumerate(tree):
        walk(f"{prefix}/{i}", value)
    else:
      flat[prefix] = np.asarray(tree)

  state = restored["state"]
  params = state["params"] if isinstance(state, dict) else state[0]
  walk(f"step{step}", params)
  return flat


def record(out: str) -> None:
  arrays = {}
  with tempfile.TemporaryDirectory() as root:
    for name, (module, args) in RUNS.items():
      workdir = os.path.join(root, name)
      subprocess.run([sys.executable, "-m", module, *args, f"--workdir={workdir}",
                      "--config.eval.figures=loss_curves"] if module == "experiments.train"
                     and "umap" not in name else
                     [sys.executable, "-m", module, *args, f"--workdir={workdir}"],
                     check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
      runs = ([os.path.join(workdir, d) for d in sorted(os.listdir(workdir))
               if d.startswith("latent_")] if name == "sweep" else [workdir])
      for run in runs:
        for path, value in _checkpoint_arrays(run).items():
          arrays[f"{name}:{os.path.basename(run) if name == 'sweep' else ''}:{path}"] = value
      print(f"{name}: recorded", flush=True)
  np.savez(out, **arrays)
  print(f"{len(arrays)} arrays -> {out}")


def compare(before: str, after: str) -> int:
  a, b = np.load(before), np.load(after)
  worst = {}
  missing = sorted(set(a.files) ^ set(b.files))
  for key in sorted(set(a.files) & set(b.files)):
    if a[key].shape != b[key].shape:
      missing.append(f"{key} (shape {a[key].shape} vs {b[key].shape})")
      continue
    run = key.split(":")[0]
    diff = float(np.max(np.abs(a[key].astype(np.float64) - b[key]))) if a[key].size else 0.0
    worst[run] = max(worst.get(run, 0.0), diff)
  for run, diff in worst.items():
    print(f"{run}: max |before - after| = {diff:.3g}")
  for key in missing:
    print(f"only on one side: {key}")
  return 0 if not missing and all(d <= 1e-5 for d in worst.values()) else 1


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", required=True)
  rec = sub.add_parser("record")
  rec.add_argument("--out", required=True)
  cmp = sub.add_parser("compare")
  cmp.add_argument("before")
  cmp.add_argument("after")
  args = parser.parse_args()
  sys.exit(record(args.out) if args.command == "record" else compare(args.before, args.after))
