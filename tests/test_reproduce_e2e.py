"""train -> evaluate -> reproduce's table, through the `ladder` commands, on a tiny budget.

`ladder evaluate` writes what `ladder reproduce` reads: the FID rows of the table must be
the evaluation's own numbers, a current evaluation must not be redone, and a missing one
must be made by `reproduce --evaluate`.
"""
import json
import os

import numpy as np
import pytest

from ladder_tf.commands import main as ladder
from ladder_tf.data.mnist import DEBIAN_FASHION_DIR

TINY = ["--set", "batch_size=64", "--set", "code_size=4", "--set", "num_hidden_units=64",
        "--set", "n_mixtures=3", "--set", "n_MC_samples=8", "--set", "fast_fit_samples=200",
        "--set", "accurate_fit_samples=200", "--set", "test_batch_size=20"]
BUDGET = ["--epochs", "1", "--steps-per-epoch", "3", "--no-progress", "--no-download"]
FID = ["--num-samples", "60", "--repeats", "2"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    if not os.path.isdir(DEBIAN_FASHION_DIR):
        pytest.skip(f"Fashion-MNIST not installed at {DEBIAN_FASHION_DIR}")
    from ladder_tf.data import load_dataset

    full = load_dataset("mnist_fashion", allow_download=False)
    path = tmp_path_factory.mktemp("data") / "fashion-mnist.npz"
    np.savez(path, x_train=full.x_train[:1000], y_train=full.y_train[:1000],
             x_test=full.x_test[:200], y_test=full.y_test[:200])
    return str(path)


def fid_cells(text, row):
    """The cells of ``row`` in results.md's first FID table."""
    table = text.split("### FID:", 1)[1]
    line = next(ln for ln in table.splitlines() if ln.startswith(f"| {row} |"))
    return [c.strip() for c in line.split("|")[2:-1]]


@pytest.mark.e2e
def test_train_evaluate_then_table(data_file, tmp_path, capsys):
    root = str(tmp_path / "experiments")
    normal = os.path.join(root, "mnist_fashion", "normal", "seed0")
    data = ["--data-dir", data_file]
    assert ladder(["train", "--dataset", "mnist_fashion", "--prior", "normal", "--seed", "0",
                   "--out-dir", normal, "--no-export", *BUDGET, *data, *TINY]) == 0
    assert ladder(["evaluate", normal, "--features", "classifier", "--cache-dir", root, "--no-progress",
                   *FID, *data]) == 0
    evaluation = json.load(open(os.path.join(normal, "evaluation-classifier.json")))
    stamp = os.path.getmtime(os.path.join(normal, "evaluation-classifier.json"))
    capsys.readouterr()

    argv = ["reproduce", "--priors", "normal,gmm", "--seeds", "0", "--out-root", root,
            "--evaluate", "classifier", *FID, *BUDGET, *data, *TINY]
    assert ladder(argv) == 0
    out = capsys.readouterr().out
    assert "normal, seed 0: finished already, skipped" in out  # trained by `ladder train`
    assert "classifier FID of normal, seed 0: evaluated already, skipped" in out
    assert "classifier FID of gmm, seed 0: evaluating" in out
    # run by run: normal's evaluation comes before gmm trains
    assert out.index("classifier FID of normal, seed 0") < out.index("gmm, seed 0: training into")
    assert os.path.getmtime(os.path.join(normal, "evaluation-classifier.json")) == stamp

    text = open(os.path.join(root, "mnist_fashion", "results.md")).read()
    record = json.load(open(os.path.join(root, "mnist_fashion", "results.json")))
    gmm = json.load(open(os.path.join(root, "mnist_fashion", "gmm", "seed0", "evaluation-classifier.json")))
    for key, label in (("generation", "Generation"), ("reconstruction", "Reconstruction"),
                       ("difference", "Difference"), ("real", "Real image")):
        expected = [evaluation["columns"][0]["fid"][key]["values"], gmm["columns"][0]["fid"][key]["values"]]
        assert fid_cells(text, label) == [f"{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}" for v in expected]
        cells = record["tables"]["table1"]["fid"][0]["rows"][key]
        np.testing.assert_allclose([cells["normal"]["mean"], cells["gmm"]["mean"]], np.mean(expected, axis=1))
    assert fid_cells(text, "seeds evaluated") == ["1/1", "1/1"]
    assert "classifier-FID" in text and "60 generated images" in text and "2 repeats" in text
    assert "Training budget: 1 epochs of 3 steps, batch 64, the whole training split" in text and "tensorflow 2." in text
    assert record["missing"] == [] and record["seeds"] == [0]
    assert ladder([*argv, "--results", os.path.join(root, "t1")]) == 0  # nothing left to do
    assert "evaluating" not in capsys.readouterr().out
    assert open(os.path.join(root, "t1.md")).read().split("\n", 3)[3] == text.split("\n", 3)[3]
    final = [json.loads(ln) for ln in open(os.path.join(normal, "metrics.jsonl"))][-1]
    assert f"{-final['test_elbo']:.2f}" in text
    training = record["tables"]["table1"]["runs"]["normal"][0]["training"]  # kept for tables without run dirs
    assert training["epochs"] == final["epoch"] == 1 and training["final_sigma"] == final["sigma"]
    assert training["seconds"] == final["epoch_seconds"] and training["final_loss_sigma"] == final["train_sigma"]
