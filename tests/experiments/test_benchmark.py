"""The benchmark entry point loads every benchmark and names them."""


def test_an_unknown_benchmark_lists_the_known_ones(run_python):
  # Importing experiments.benchmark imports every benchmark module, so a
  # benchmark broken by a library change fails here, not on a device.
  result = run_python("-m", "experiments.benchmark", "nope")
  assert result.returncode != 0
  assert "{vae|ensemble|umap}" in result.stdout + result.stderr
