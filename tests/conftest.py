"""Fixtures shared by the whole suite: tiny datasets, smoke configs, and the
smoke runs that several test files read.

The session-scoped runs are shared read-only: a test that writes into a run's
workdir works on a copy (`copy_run`). Folder conftest.py files add what only
their folder uses (a fitted ParametricUMAP in umap/, fake decoders and latent
codes in evaluation/, tiny images in train/).
"""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

# One persistent XLA compilation cache for the session and every subprocess
# it starts (set before JAX is imported): the suite's many smoke runs compile
# the same programs, and a cache hit returns the same executable.
# One BLAS thread (before NumPy is imported): on 2 cores shared with XLA's
# threads, OpenBLAS's own threads contend for them and small products and
# eigendecompositions slow down many-fold.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix="latent_jax_test_xla_")
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
  os.environ.update({"JAX_COMPILATION_CACHE_DIR": _CACHE,
                     "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                     "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"})

import numpy as np  # noqa: E402
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from experiments.configs import vae_digits, vae_heatmaps
from latent_jax.runs import vae as vae_runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- Accelerator-only tests ---------------------------------------------------


def pytest_collection_modifyitems(config, items):
  """Tests marked `accelerator` (pyproject.toml) skip on a CPU backend."""
  del config
  import jax  # pylint: disable=g-import-not-at-top
  if jax.default_backend() != "cpu":
    return
  skip = pytest.mark.skip(reason="accelerator test; the JAX backend is cpu "
                          "(run on a GPU/TPU: pytest -m accelerator)")
  for item in items:
    if "accelerator" in item.keywords:
      item.add_marker(skip)


# --- The repository and its commands -----------------------------------------


@pytest.fixture(scope="session")
def repo_root():
  """The repository root: the working directory of every command run."""
  return REPO


# Serves `python -m MODULE ARGV` commands: it imports the project's slow
# modules once, then runs each command in a fork of itself, as `python -m`
# would run it (absl parses flags once per process: one fork per command).
# Requests are JSON lines: ["start", module, argv, timeout] -> {pid};
# ["wait", pid] / ["poll", pid] -> {returncode (None: running), stdout,
# stderr}. Each reply is one line, `_REPLY` + JSON.
_REPLY = "latent_jax-command-reply:"
_COMMAND_SERVER = r"""
import json, os, runpy, signal, sys, tempfile, traceback
import experiments.cli, latent_jax.runs  # the slow imports, once
outputs = {}

def start(module, argv, timeout):
  paths = []
  for _ in range(2):
    fd, path = tempfile.mkstemp()
    os.close(fd)
    paths.append(path)
  sys.stdout.flush()
  pid = os.fork()
  if pid == 0:
    signal.alarm(timeout)  # SIGALRM ends a command that hangs
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # not the request pipe
    sys.stdin = open(os.devnull)
    for fd, path in zip((1, 2), paths):
      os.dup2(os.open(path, os.O_WRONLY), fd)
    sys.stdout, sys.stderr = (os.fdopen(fd, "w", buffering=1) for fd in (1, 2))
    sys.argv = [module, *argv]
    try:
      runpy.run_module(module, run_name="__main__", alter_sys=True)
      code = 0
    except SystemExit as stop:  # as the interpreter reads sys.exit(code)
      code = 0 if stop.code is None else stop.code
      if not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    except BaseException:
      traceback.print_exc()
      code = 1
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(code)
  outputs[pid] = paths
  return {"pid": pid}

def finish(pid, options):
  done, status = os.waitpid(pid, options)
  if not done:
    return {"returncode": None}
  texts = []
  for path in outputs.pop(pid):
    with open(path) as file:
      texts.append(file.read())
    os.remove(path)
  return {"returncode": os.waitstatus_to_exitcode(status),
          "stdout": texts[0], "stderr": texts[1]}

for line in sys.stdin:
  request, *args = json.loads(line)
  reply = (start(*args) if request == "start" else
           finish(args[0], 0 if request == "wait" else os.WNOHANG))
  print(REPLY + json.dumps(reply), flush=True)
"""


class _CommandServer:
  """The `_COMMAND_SERVER` process, started on first use."""

  def __init__(self, log_path):
    self.log_path, self.process = log_path, None

  def ask(self, *request) -> dict:
    if self.process is None or self.process.poll() is not None:
      with open(self.log_path, "w") as log:
        self.process = subprocess.Popen(
            [sys.executable, "-c", f"REPLY = {_REPLY!r}\n" + _COMMAND_SERVER],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log, text=True)
    self.process.stdin.write(json.dumps(request) + "\n")
    self.process.stdin.flush()
    for line in self.process.stdout:
      if line.startswith(_REPLY):
        return json.loads(line[len(_REPLY):])
    raise RuntimeError("the command server exited: "
                       + self.log_path.read_text()[-4000:])

  def close(self):
    if self.process is not None:
      self.process.kill()  # idle between commands: nothing to finish
      self.process.wait()


class ForkedCommand:
  """A `python -m ...` command running in a fork of the command server,
  with Popen's pid, poll(), wait(), send_signal(), returncode, stdout and
  stderr (the texts, once it has ended)."""

  def __init__(self, server, args, timeout):
    self.args, self._server = args, server
    self.pid = server.ask("start", args[1], list(args[2:]), timeout)["pid"]
    self.returncode = self.stdout = self.stderr = None

  def _update(self, request):
    if self.returncode is None:
      reply = self._server.ask(request, self.pid)
      if reply["returncode"] is not None:
        self.returncode = reply["returncode"]
        self.stdout, self.stderr = reply["stdout"], reply["stderr"]
    return self.returncode

  def poll(self):
    return self._update("poll")

  def wait(self, timeout=None):
    del timeout  # the server's alarm (the start's timeout) bounds it
    return self._update("wait")

  def send_signal(self, signum):
    os.kill(self.pid, signum)


@pytest.fixture(scope="session")
def command_server(tmp_path_factory):
  """The one interpreter that forks `-m` commands (`_COMMAND_SERVER`)."""
  server = _CommandServer(
      tmp_path_factory.mktemp("command_server") / "stderr.txt")
  yield server
  server.close()


@pytest.fixture(scope="session")
def start_python(command_server):
  """`start_python("-m", MODULE, *argv, timeout=300)`: the command started
  in a fork of the command server (no interpreter start-up); a
  ForkedCommand, like subprocess.Popen."""

  def start(*args, timeout=300):
    if args[:1] != ("-m",) or len(args) < 2:
      raise ValueError(f"start_python runs `-m MODULE ...`, not {args}")
    return ForkedCommand(command_server, args, timeout)

  return start


@pytest.fixture(scope="session")
def run_python(start_python):
  """Runs `python ARGS...` (e.g. "-m", "experiments.train", ...) in the
  repository root; returns the CompletedProcess with text stdout/stderr.

  `-m MODULE ...` runs in a fork of one interpreter that has imported the
  project once (`start_python`), which saves each command the start-up;
  anything else (`-c SCRIPT`, `-P ...`) runs in a new interpreter.
  """

  def run(*args, timeout=120):
    if args[:1] != ("-m",) or len(args) < 2:
      return subprocess.run([sys.executable, *args], cwd=REPO,
                            capture_output=True, text=True, timeout=timeout)
    command = start_python(*args, timeout=timeout)
    command.wait()
    return subprocess.CompletedProcess([sys.executable, *args],
                                       command.returncode, command.stdout,
                                       command.stderr)

  return run


# --- Tiny datasets ------------------------------------------------------------


@pytest.fixture(scope="session")
def digits():
  """scikit-learn's 1,797 8x8 digits as [N, 64] floats in [0, 1], labels."""
  images, labels = load_digits(return_X_y=True)
  return (images / 16.0).astype(np.float32), labels


@pytest.fixture(scope="session")
def heatmap_cache(tmp_path_factory):
  """One heatmap cache directory for the session (the arrays are keyed by
  their generating parameters, so readers never see each other's data)."""
  return str(tmp_path_factory.mktemp("heatmap_cache"))


# --- Smoke configs ------------------------------------------------------------


def _smoke_config(module, arg="smoke", **overrides):
  config = module.get_config(arg)
  config.unlock()
  for path, value in overrides.items():
    section, _, field = path.rpartition(".")
    (config[section] if section else config)[field] = value
  config.lock()
  return config


@pytest.fixture(scope="session")
def smoke_config():
  """`smoke_config(module, arg="smoke", **{"train.epochs": 3, "seed": 1})`:
  the config module's `get_config(arg)` with the dotted fields set, locked."""
  return _smoke_config


def _ensemble_config(kl_weights=(), seeds=(), **overrides):
  overrides = {"ensemble.kl_weights": tuple(kl_weights),
               "ensemble.seeds": tuple(seeds),
               "eval.figures": "loss_curves,reconstructions",
               "eval.iwae_samples": 0,  # the report's own tests cover it
               **overrides}
  return _smoke_config(vae_digits, **overrides)


@pytest.fixture(scope="session")
def ensemble_config():
  """`ensemble_config(kl_weights, seeds, **overrides)`: the digits smoke VAE
  with those ensemble members, two figures and no IWAE; no members given is
  the single run."""
  return _ensemble_config


# --- Smoke runs, trained once per session and read by several files -----------


@pytest.fixture(scope="session")
def vae_heatmaps_run(tmp_path_factory, heatmap_cache):
  """The heatmap smoke VAE, 4 epochs, every figure: (config, workdir,
  summary)."""
  workdir = str(tmp_path_factory.mktemp("vae_heatmaps"))
  config = _smoke_config(vae_heatmaps, **{"data.cache_dir": heatmap_cache,
                                          "train.epochs": 4})
  summary = vae_runs.train_and_evaluate(config, workdir)
  return config, workdir, summary


@pytest.fixture(scope="session")
def vae_digits_run(tmp_path_factory):
  """The digits smoke VAE (latent 2, a class label), loss curves only: its
  workdir."""
  workdir = str(tmp_path_factory.mktemp("vae_digits"))
  vae_runs.train_and_evaluate(
      _smoke_config(vae_digits, **{"eval.figures": "loss_curves"}), workdir)
  return workdir


@pytest.fixture
def copy_run(tmp_path):
  """`copy_run(workdir)`: a copy of a shared run's workdir to write into."""

  def copy(workdir):
    target = str(tmp_path / os.path.basename(workdir.rstrip(os.sep)))
    shutil.copytree(workdir, target)
    return target

  return copy


# --- Figures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def non_blank_png():
  """`non_blank_png(path)`: whether the PNG's grey levels vary (std > 1)."""

  def check(path):
    pixels = np.asarray(Image.open(path).convert("L"), np.float32)
    return pixels.std() > 1.0

  return check
