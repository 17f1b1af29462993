"""The tutorial notebook: it is notebooks/make_tutorial.py's output (no
stored outputs), and it runs top to bottom in a python3 kernel from
notebooks/, as a reader opens it, with what it prints holding up."""

import importlib.util
import os
import re

import pytest

from experiments.configs import vae_digits

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(REPO, "notebooks")
TUTORIAL = os.path.join(NOTEBOOKS, "tutorial.ipynb")
WIDGET = "application/vnd.jupyter.widget-view+json"


def _generator():
  spec = importlib.util.spec_from_file_location(
      "make_tutorial", os.path.join(NOTEBOOKS, "make_tutorial.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_the_notebook_is_its_generators_output_without_outputs():
  with open(TUTORIAL, encoding="utf-8") as file:
    stored = file.read()
  built = _generator().build()
  nbformat.validate(built)
  assert stored == nbformat.writes(built) + "\n", (
      "tutorial.ipynb is stale: python notebooks/make_tutorial.py")
  code = [c for c in built.cells if c.cell_type == "code"]
  assert code and all(not c.outputs and c.execution_count is None
                      for c in code)


@pytest.fixture(scope="module")
def executed():
  """The notebook run by nbclient in notebooks/; every cell's outputs."""
  notebook = nbformat.read(TUTORIAL, as_version=4)
  nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                          resources={"metadata": {"path": NOTEBOOKS}}
                          ).execute()
  return notebook


def _printed(notebook) -> str:
  return "".join(output.get("text", "") for cell in notebook.cells
                 for output in cell.get("outputs", ())
                 if output.output_type == "stream")


def _setting(notebook, name) -> int:
  return int(re.search(rf"^{name} = (\d+)", notebook.cells[1].source,
                       re.MULTILINE).group(1))


def test_the_notebook_runs_and_what_it_prints_holds(executed):
  printed = _printed(executed)
  # Training lowers the test negative ELBO and the reconstruction error.
  before, after = map(float, re.search(
      r"test neg-ELBO: untrained ([\d.]+), trained ([\d.]+)",
      printed).groups())
  assert after < 0.8 * before
  before, after = map(float, re.search(
      r"test reconstruction MSE: untrained ([\d.]+), trained ([\d.]+)",
      printed).groups())
  assert after < before
  # The restored model is the run's last step: epochs x steps per epoch.
  smoke = vae_digits.get_config("smoke")
  steps = (_setting(executed, "RUN_EPOCHS")
           * (smoke.data.max_train // smoke.train.batch_size))
  assert f"restored step {steps}: a VAE with latent_dim 2" in printed
  assert float(re.search(r"trustworthiness of the embedding: ([\d.]+)",
                         printed).group(1)) > 0.85
  outputs = [output for cell in executed.cells
             for output in cell.get("outputs", ())]
  assert sum(WIDGET in output.get("data", {}) for output in outputs) == 2
  # Two reconstruction figures, three latent views, the inverse grid.
  assert sum("image/png" in output.get("data", {}) for output in outputs) == 6
