"""Benchmarks (not tests): ratios measured in one run on one device.

  python -m experiments.benchmark vae [--arch=keras_conv --batch_size=64]
  python -m experiments.benchmark ensemble [--members=8 --steps=100]
  python -m experiments.benchmark umap [--umap_sets=digits,mnist_like]
  python -m experiments.benchmark umap --protocol=paper [--umap_seeds=0,1,2]
  python -m experiments.benchmark device --out=DIR [--smoke]

`vae`: the training loop's images/s against a bare jitted `value_and_grad`
and the device's matmul rate (experiments/benchmark_vae.py); `ensemble`: M
members in one program against M runs (benchmark_ensemble.py); `umap`:
ParametricUMAP beside umap-learn (benchmark_umap.py; `--protocol=paper`:
the Parametric UMAP paper's table, benchmark_umap_protocol.py); `device`:
all of them sized to one accelerator's minutes, a report in DIR
(benchmark_device.py).
A bad flag value is one `error: ...` line (experiments/cli.py).
"""

from __future__ import annotations

import json
import sys

import jax
import matplotlib
from absl import app, flags

matplotlib.use("Agg")  # headless: the runs write figures to files

from experiments import benchmark_device
from experiments.cli import (OUT, USER_ERRORS, exit_with_error,
                             parse_flags)
from experiments.benchmark_ensemble import benchmark_ensemble
from experiments.benchmark_umap import benchmark_umap
from experiments.benchmark_vae import benchmark_vae


_SMOKE = flags.DEFINE_bool("smoke", False, "device: tiny sizes on any "
                           "backend (a CPU rehearsal of the accelerator run).")


def device_check() -> dict:
  return benchmark_device.run_from_command(OUT.value, _SMOKE.value)


BENCHMARKS = {"vae": benchmark_vae, "ensemble": benchmark_ensemble,
              "umap": benchmark_umap, "device": device_check}


def main(argv):
  if len(argv) != 2 or argv[1] not in BENCHMARKS:
    raise app.UsageError(f"Usage: python -m experiments.benchmark "
                         f"{{{'|'.join(BENCHMARKS)}}} [flags]")
  if (argv[1] == "device" and not _SMOKE.value
      and jax.default_backend() == "cpu"):
    print(benchmark_device.NO_ACCELERATOR)
    sys.exit(1)
  try:
    results = BENCHMARKS[argv[1]]()
  except USER_ERRORS as error:
    exit_with_error(error)
  width = max(map(len, results))
  for name, value in results.items():
    shown = f"{value:.4g}" if isinstance(value, float) else value
    print(f"{name:<{width}}  {shown}")
  print(json.dumps(results))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
