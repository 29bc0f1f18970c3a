"""The comparison runner: argument checking, run layout, the results table, skip and resume."""
import json
import os

import numpy as np
import pytest

from ladder_tf.workflows import reproduce
from ladder_tf.io_utils import read_jsonl, write_jsonl

TINY = ["--set", "batch_size=64", "--set", "code_size=4", "--set", "num_hidden_units=64",
        "--set", "n_mixtures=3", "--set", "n_MC_samples=8", "--set", "fast_fit_samples=200",
        "--set", "accurate_fit_samples=200", "--set", "test_batch_size=20"]


def specs_for(tmp_path, *argv):
    args = reproduce.build_parser().parse_args(["--out-root", str(tmp_path), *argv])
    return reproduce.build_specs(args)


@pytest.mark.parametrize("argv, message", [
    (["--priors", "normal,flow"], "unknown prior flow"),
    (["--priors", "gmm,GMM"], "twice"),
    (["--seeds", "0,x"], "--seeds expects comma-separated integers"),
    (["--d-t", "0,2"], "--d-t values must be >= 1"),
    (["--set", "n_mixturs=3"], "did you mean 'n_mixtures'"),
    (["--epochs", "0"], "num_epochs"),
])
def test_bad_arguments_exit_2_with_one_message(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        reproduce.main(["--out-root", str(tmp_path), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not os.listdir(tmp_path)  # nothing trained, nothing written


def test_run_layout_and_sweep(tmp_path):
    t1, t2 = specs_for(tmp_path, "--priors", "normal,vampPrior", "--seeds", "0,2", "--epochs", "3")
    assert [(s.column, s.seed) for s in t1] == [("normal", 0), ("normal", 2), ("vampprior", 0),
                                                 ("vampprior", 2)]
    assert t1[3].run_dir == os.path.join(str(tmp_path), "mnist_fashion", "vampprior", "seed2")
    assert all(s.cfg.num_epochs == 3 and s.cfg.prior == s.column for s in t1) and t2 == []
    t1, t2 = specs_for(tmp_path, "--d-t", "2,8", "--dataset", "mnist_digit")
    assert t1 == []  # the sweep alone unless --priors is given
    assert [(s.column, s.cfg.representation_size, s.cfg.prior) for s in t2] == [
        ("d_t = 2", 2, "ladder"), ("d_t = 8", 8, "ladder")]
    assert t2[1].run_dir == os.path.join(str(tmp_path), "mnist_digit", "ladder_dt8", "seed0")
    assert [s.column for s in specs_for(tmp_path)[0][::1]] == list(reproduce.ALL_PRIORS)


def fake_run(spec, elbo_terms, epoch=None, eval_json=None):
    """A run directory whose metrics.jsonl ends with the given test terms."""
    row = {"epoch": spec.cfg.num_epochs if epoch is None else epoch}
    row.update({f"test_{k}": v for k, v in elbo_terms.items()})
    os.makedirs(spec.run_dir, exist_ok=True)
    write_jsonl(os.path.join(spec.run_dir, "metrics.jsonl"), [row])
    if eval_json is not None:
        with open(os.path.join(spec.run_dir, "eval.json"), "w") as fh:
            json.dump(eval_json, fh)


def test_results_table_mean_std_and_eval_rows(tmp_path):
    t1, _ = specs_for(tmp_path, "--priors", "normal,gmm", "--seeds", "0,1,2", "--epochs", "2")
    rng = np.random.default_rng(0)
    values = {}
    for s in t1:
        terms = dict(zip(("reconstruction", "sigma_term", "entropy", "cross_entropy"),
                         rng.normal(size=4) * 10))
        terms["elbo"] = sum(terms.values())
        values.setdefault(s.column, []).append(terms)
        unfinished = s.column == "gmm" and s.seed == 2  # excluded from the statistics
        fid = {"fid_generation_mean": 10.0 + s.seed, "fid_generation_std": 0.5, "kid_mean": 1.0}
        fake_run(s, terms, epoch=1 if unfinished else None,
                 eval_json=fid if s.column == "normal" else None)
    text = reproduce.results_markdown("mnist_fashion", t1, [])
    lines = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]]
             for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln}
    table = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert len(table) == 2 + 1 + 2 + len(reproduce.ELBO_ROWS)  # header, seeds, 2 eval rows, terms
    assert all(ln.count("|") == 4 for ln in table)  # no label breaks the cells
    assert lines[""] == ["normal", "gmm"]
    assert lines["seeds finished"] == ["3/3", "2/3"]
    neg = [-v["elbo"] for v in values["normal"]]
    assert lines["-ELBO (nats/image)"][0] == f"{np.mean(neg):.2f} ± {np.std(neg, ddof=1):.2f}"
    cross = [-v["cross_entropy"] for v in values["gmm"][:2]]
    assert lines["-cross-entropy -E_q[log p(z)]"][1] == f"{np.mean(cross):.2f} ± {np.std(cross, ddof=1):.2f}"
    assert lines["FID generation"] == [f"11.00 ± {np.std([10, 11, 12], ddof=1):.2f}", "-"]
    assert lines["kid"] == ["1.00 ± 0.00", "-"]
    # A single seed shows the evaluation's own std when it reports one.
    single = [s for s in t1 if s.seed == 0]
    one = reproduce.results_markdown("mnist_fashion", single, [])
    assert "| FID generation | 10.00 ± 0.50 | - |" in one


@pytest.mark.e2e
def test_two_priors_one_seed_then_skip(tmp_path, capsys):
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("Fashion-MNIST is not installed")
    argv = ["--dataset", "mnist_fashion", "--priors", "normal,gmm", "--seeds", "0", "--epochs", "1",
            "--steps-per-epoch", "2", "--train-size", "256", "--out-root", str(tmp_path),
            "--no-progress", "--no-download", *TINY]
    assert reproduce.main(argv) == 0
    results = tmp_path / "mnist_fashion" / "results.md"
    text = results.read_text()
    header = next(ln for ln in text.splitlines() if ln.startswith("| |"))
    assert header == "| | normal | gmm |"
    for prior in ("normal", "gmm"):
        run = tmp_path / "mnist_fashion" / prior / "seed0"
        (row,) = read_jsonl(run / "metrics.jsonl")
        assert row["epoch"] == 1
        assert f"{-row['test_elbo']:.2f}" in text
    assert (tmp_path / "mnist_fashion" / "gmm" / "seed0" / "mixture" / "mixture_e001.npz").exists()
    stamp = os.path.getmtime(tmp_path / "mnist_fashion" / "gmm" / "seed0" / "metrics.jsonl")
    capsys.readouterr()
    assert reproduce.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("finished already, skipped") == 2 and "training into" not in out
    assert os.path.getmtime(tmp_path / "mnist_fashion" / "gmm" / "seed0" / "metrics.jsonl") == stamp
    assert results.read_text() == text
    # More epochs: the Trainer resumes the finished run from its checkpoint (epoch 1 kept).
    first = read_jsonl(tmp_path / "mnist_fashion" / "gmm" / "seed0" / "metrics.jsonl")
    more = [a for a in argv if a != "normal,gmm"]
    more[more.index("--priors") + 1:more.index("--priors") + 1] = ["gmm"]
    more[more.index("--epochs") + 1] = "2"
    assert reproduce.main(more) == 0
    rows = read_jsonl(tmp_path / "mnist_fashion" / "gmm" / "seed0" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0] == first[0]
    assert rows[1]["gmm_accurate_fit"] == 1 and rows[0]["gmm_accurate_fit"] == 1
    assert "| | gmm |" in results.read_text()
