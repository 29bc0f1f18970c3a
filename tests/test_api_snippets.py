"""The Python API snippets run as written (the README's load_model one, docs/usage.md's
fit_prior one), on a tiny trained run, its export and synthetic latents (the placeholder
paths are substituted), and give what they say."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import ladder_tf
from ladder_tf.config import from_dict
from ladder_tf.workflows import export, training
from synthetic import synthetic_data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
USAGE = os.path.join(REPO, "docs", "usage.md")
RUN = "experiments/mnist_fashion/ladder"  # the placeholders the snippets use
TINY_LADDER = {"prior": "ladder", "exp_name": "mnist_fashion", "code_size": 4, "num_hidden_units": 64,
               "batch_size": 16, "num_epochs": 2, "steps_per_epoch": 3, "sg_pretraining": 1,
               "representation_size": 2, "n_layers_inner_VAE": 1, "num_hidden_units_inner_VAE": 16,
               "n_mixtures": 3, "n_MC_samples": 4, "test_batch_size": 20, "fast_fit_samples": 60,
               "accurate_fit_samples": 60}


def snippets(page: str = README) -> list[str]:
    with open(page, encoding="utf-8") as fh:
        return re.findall(r"```python\n(.*?)```", fh.read(), flags=re.S)


def fit_prior_snippet() -> str:
    (block,) = [b for b in snippets(USAGE) if "fit_prior(" in b]
    return block


def run(code: str, substitutions: dict[str, str], page: str = README) -> dict:
    for placeholder, path in substitutions.items():
        assert f'"{placeholder}"' in code, placeholder
        code = code.replace(f'"{placeholder}"', repr(path))
    namespace: dict = {}
    exec(compile(code, page, "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LaDDer run (a checkpoint and saved_model/), trained for 2 epochs of 3 steps."""
    run_dir = str(tmp_path_factory.mktemp("api") / "ladder")
    trainer = training.Trainer(from_dict(TINY_LADDER), synthetic_data(), run_dir, show_progress=False)
    trainer.fit()
    export.export_checkpoint(run_dir)
    return run_dir


def test_the_pages_have_the_snippets():
    blocks = snippets()
    assert len(blocks) == 1 and "load_model" in blocks[0]
    assert "fit_prior" in fit_prior_snippet() and "load_prior" in fit_prior_snippet()
    assert all(len([ln for ln in b.splitlines() if ln.strip()]) <= 8 for b in blocks)  # "five lines or so"


@pytest.mark.slow
@pytest.mark.parametrize("where", ["run directory", "saved_model"])
def test_load_model_snippet(trained, where):
    path = trained if where == "run directory" else os.path.join(trained, "saved_model")
    ns = run(snippets()[0], {RUN: path})
    model = ns["model"]
    assert isinstance(model, ladder_tf.TrainedModel) and model.name == "ladder"
    assert ns["images"].shape == (16, 28, 28, 1)
    assert float(np.min(ns["images"])) >= 0 and float(np.max(ns["images"])) <= 1
    assert ns["mean"].shape == ns["std"].shape == (16, 4)
    log_p = np.asarray(ns["log_p"])
    assert log_p.shape == (16,) and np.all(np.isfinite(log_p))
    assert model.has_density and model.density_is_estimate


def test_both_doors_give_the_same_numbers(trained):
    """The run directory and its export: the snippet's values agree."""
    a = run(snippets()[0], {RUN: trained})
    b = run(snippets()[0], {RUN: os.path.join(trained, "saved_model")})
    for key in ("images", "mean", "log_p"):
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_fit_prior_snippet(tmp_path):
    rng = np.random.default_rng(0)
    latents = np.concatenate([rng.normal(-2, 0.3, (150, 2)), rng.normal(2, 0.3, (150, 2))]).astype(np.float32)
    np.save(tmp_path / "latents.npy", latents)
    ns = run(fit_prior_snippet(), {"latents.npy": str(tmp_path / "latents.npy"),
                                   "prior.npz": str(tmp_path / "prior.npz")}, USAGE)
    prior = ns["prior"]  # the loaded one
    assert isinstance(prior, ladder_tf.FittedPrior) and prior.kind == "ladder" and prior.log_prob_is_estimate
    assert ns["samples"].shape == (1000, 2)
    assert ns["log_p"].shape == (100,) and np.all(np.isfinite(ns["log_p"]))
    np.testing.assert_array_equal(prior.log_prob(latents[:100], n_samples=1000), ns["log_p"])
    assert sorted(os.listdir(tmp_path)) == ["latents.npy", "prior.npz"]  # no temporary file left


def test_importing_the_package_starts_no_tensorflow():
    code = ("import sys, ladder_tf; assert 'tensorflow' not in sys.modules; "
            "assert {'load_model', 'fit_prior', 'load_prior'} <= set(dir(ladder_tf)); "
            "from ladder_tf import fit_prior; print('tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True"]  # the first use imports it
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ladder_tf.nothing  # noqa: B018
    for name, target in ladder_tf.API.items():
        module, attribute = target.split(":")
        assert module.split(".")[1] in ("workflows", "model"), name  # the layers the API may reach
