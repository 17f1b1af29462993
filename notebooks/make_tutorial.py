"""Writes notebooks/tutorial.ipynb (no outputs) from the cells below.

  python notebooks/make_tutorial.py

Edit the cells here, not the .ipynb: tests/test_notebook.py checks that the
notebook is this script's output and runs it top to bottom.
"""

import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "tutorial.ipynb")

CELLS = [
    ("md", """\
# latent_jax tutorial

1. a VAE built from the library and trained with a plain optax loop;
2. a run of the library's run layer, restored from its checkpoint;
3. an interactive latent explorer (one slider per latent dimension);
4. PCA, t-SNE and ParametricUMAP views of the latent codes;
5. a ParametricUMAP and the images its `inverse_transform` decodes.

Everything runs on scikit-learn's 8x8 digits (no download), in one to
two minutes on a 2-core CPU with the settings below. Run it from the repository
root or from `notebooks/`; the sliders need the `[notebook]` extra
(ipywidgets)."""),
    ("code", """\
# Small settings, so the whole notebook runs in a minute or two on a CPU.
TRAIN_STEPS = 300   # section 1's optax steps
BATCH_SIZE = 64
LATENT_DIM = 4      # section 1's VAE (section 2's run has the config's 2)
RUN_EPOCHS = 2      # section 2's run: the digits smoke config, 8 steps/epoch
VIEW_POINTS = 200   # test codes in section 4's views
UMAP_POINTS = 500   # digits in section 5's ParametricUMAP
SEED = 0"""),
    ("code", """\
%matplotlib inline
import os
import sys
import tempfile

# The run configs (experiments/) sit beside latent_jax/ in the repository.
ROOT = os.path.abspath(".." if os.path.basename(os.getcwd()) == "notebooks"
                       else ".")
sys.path.insert(0, ROOT)

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import latent_jax
from latent_jax import losses
from latent_jax.evaluation.figures import plot_reconstructions"""),
    ("md", """\
## 1. A VAE trained with plain optax

The library's pieces without the experiment runner: the `small` conv VAE
preset, the per-example losses of `latent_jax.losses` (Bernoulli
reconstruction + KL to N(0, I) = the negative ELBO, nats per image) and a
jitted optax step."""),
    ("code", """\
data = latent_jax.load_dataset("digits", seed=SEED)
train_images = np.asarray(data.train_images)   # [N, 8, 8, 1] in [0, 1]
test_images = jnp.asarray(data.test_images)
vae = latent_jax.build_model("vae", "small", input_shape=data.image_shape,
                             latent_dim=LATENT_DIM, rngs=nnx.Rngs(SEED))
graphdef, params = nnx.split(vae)
optimizer = optax.adam(1e-3)
opt_state = optimizer.init(params)


def neg_elbo(params, images, key):
  outputs, mean, log_variance, _ = nnx.merge(graphdef, params)(images, key)
  recon = losses.bernoulli_nll(outputs, images)
  kl = losses.gaussian_kl_to_standard_normal(mean, log_variance)
  return jnp.mean(losses.negative_elbo(recon, kl))


@jax.jit
def train_step(params, opt_state, images, key):
  loss, grads = jax.value_and_grad(neg_elbo)(params, images, key)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


@jax.jit
def decode(params, codes):   # [M, D] -> [M, 8, 8, 1] decoder means
  return losses.decoder_mean("bernoulli",
                             nnx.merge(graphdef, params).decode(codes))


@jax.jit
def embed(params, images):   # [N, 8, 8, 1] -> [N, D] posterior means
  return nnx.merge(graphdef, params).embed(images)


@jax.jit
def test_scores(params):   # (neg-ELBO, reconstruction MSE) on the test set
  mse = jnp.mean((decode(params, embed(params, test_images)) - test_images)**2)
  return neg_elbo(params, test_images, jax.random.key(1)), mse


untrained = test_scores(params)
order, per_epoch = None, len(train_images) // BATCH_SIZE
for step in range(TRAIN_STEPS):
  if step % per_epoch == 0:
    order = np.random.default_rng(step).permutation(len(train_images))
  batch = order[(step % per_epoch) * BATCH_SIZE:][:BATCH_SIZE]
  params, opt_state, loss = train_step(params, opt_state, train_images[batch],
                                       jax.random.key(step))
trained = test_scores(params)
print(f"test neg-ELBO: untrained {untrained[0]:.2f}, trained {trained[0]:.2f}")
print(f"test reconstruction MSE: untrained {untrained[1]:.4f}, "
      f"trained {trained[1]:.4f}")"""),
    ("code", """\
shown = test_images[:12]
fig = plot_reconstructions(shown, decode(params, embed(params, shown)),
                           cmap="gray")"""),
    ("md", """\
## 2. A run of the run layer, restored

`latent_jax.runs.vae.train_and_evaluate` is what `python -m experiments.train`
calls: it writes `config.json`, `metrics.jsonl`, checkpoints, `eval.json`
and `figures/` to a workdir. Here the digits config's `smoke` version (256
training images) runs in a temporary workdir; `restore_run` reads the latest
checkpoint back into a model."""),
    ("code", """\
from experiments.configs import vae_digits
from latent_jax.runs import vae as vae_runs

config = vae_digits.get_config("smoke")
config.train.epochs = RUN_EPOCHS
config.eval.figures = "reconstructions"
config.eval.iwae_samples = 0   # the IWAE bound is the slow metric
workdir = tempfile.mkdtemp(prefix="latent_jax_tutorial_")
summary = vae_runs.train_and_evaluate(config, workdir)
print(f"run test neg_elbo {summary['neg_elbo']:.2f}; workdir holds "
      f"{sorted(os.listdir(workdir))}")"""),
    ("code", """\
run = vae_runs.restore_run(workdir)
print(f"restored step {run.step}: a {type(run.model).__name__} with "
      f"latent_dim {run.model.latent_dim}")
images = run.dataset.test_images[:12]
outputs = run.model.decode(run.model.embed(images))
fig = plot_reconstructions(images, losses.decoder_mean("bernoulli", outputs),
                           cmap="gray")"""),
    ("md", """\
## 3. Latent explorer

One slider per latent dimension, each spanning the test codes' mean +- 3
standard deviations; the image is the decoder's mean at the sliders' code.
`run_explorer` builds it from a workdir (and refuses one without a
checkpoint); `latent_explorer` takes any decode function, here section 1's
VAE."""),
    ("code", """\
explorer = vae_runs.run_explorer(workdir)
explorer"""),
    ("code", """\
from latent_jax.evaluation.explorer import code_ranges, latent_explorer

test_codes = np.asarray(embed(params, test_images))   # [N, LATENT_DIM]
explorer = latent_explorer(lambda codes: np.asarray(decode(params, codes)),
                           LATENT_DIM, ranges=code_ranges(test_codes))
explorer.sliders[0].value = explorer.sliders[0].max   # moving one redraws
explorer"""),
    ("md", """\
## 4. Views of the latent codes

Section 1's test codes projected to 2-D by PCA, t-SNE and the project's
ParametricUMAP, coloured by digit. Each view also decodes the codes behind
a line drawn in it (red circles: where those codes project)."""),
    ("code", """\
from latent_jax.evaluation import exploration, view_figures

context = exploration.LatentContext(   # codes, labels and the prior N(0, I)
    test_codes[:VIEW_POINTS], np.asarray(data.test_labels)[:VIEW_POINTS],
    data.label_names, data.categorical, np.zeros(LATENT_DIM, np.float32),
    np.ones(LATENT_DIM, np.float32))
plan = exploration.plan_exploration(None, context)   # the default view lines
for name in view_figures.FIGURES:   # latent_pca, latent_umap, latent_tsne
  view_figures.draw_view(name, plan, context,
                         lambda codes: np.asarray(decode(params, codes)),
                         cmap="gray")"""),
    ("md", """\
## 5. ParametricUMAP and its inverse

A 2-D `ParametricUMAP` with a decoder (`parametric_reconstruction=True`)
fitted on digits with a short schedule; `inverse_transform` maps a grid
spanning the embedding's corners back to images."""),
    ("code", """\
from latent_jax.evaluation.embedding_metrics import trustworthiness
from latent_jax.evaluation.umap_figures import plot_inverse_grid

points = train_images[:UMAP_POINTS].reshape(UMAP_POINTS, -1)   # [N, 64]
digit = np.asarray(data.train_labels)[:UMAP_POINTS, 0]
reducer = latent_jax.ParametricUMAP(
    n_components=2, parametric_reconstruction=True, n_epochs=200,
    layout_epochs=10, init_epochs=50, random_state=SEED)
embedding = reducer.fit_transform(points)
print(f"trustworthiness of the embedding: "
      f"{trustworthiness(points, embedding):.3f}")
fig = plot_inverse_grid(
    embedding, lambda grid: reducer.inverse_transform(grid).reshape(-1, 8, 8, 1),
    labels=digit, label_name="digit", size=8)"""),
]


def build() -> nbformat.NotebookNode:
  """The notebook: CELLS in order (ids by position, so a rebuild changes
  nothing), Python 3 kernel, no outputs."""
  make = {"md": new_markdown_cell, "code": new_code_cell}
  notebook = new_notebook(cells=[make[kind](source, id=f"cell-{index}")
                                 for index, (kind, source) in
                                 enumerate(CELLS)])
  notebook.metadata["kernelspec"] = {"name": "python3",
                                     "display_name": "Python 3",
                                     "language": "python"}
  notebook.metadata["language_info"] = {"name": "python"}
  return notebook


if __name__ == "__main__":
  nbformat.write(build(), PATH)
  print(f"wrote {PATH}")
