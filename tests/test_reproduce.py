"""The comparison runner: argument checking, run layout, the results table, skip and resume."""
import json
import os

import numpy as np
import pytest

from ladder_tf.commands import reproduce
from ladder_tf.evaluation.report import SCHEMA
from ladder_tf.io_utils import read_jsonl, write_jsonl
from ladder_tf.workflows import results
from ladder_tf.workflows.reproduce import ALL_PRIORS

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
    (["--evaluate", "classifier,fid"], "--evaluate: unknown FID network fid; choose from fid-inception"),
    (["--evaluate", "classifier", "--repeats", "0"], "--repeats must be at least 1"),
    (["--dataset", "celeba", "--evaluate", "classifier"], "celeba has none here"),
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
    assert [s.column for s in specs_for(tmp_path)[0][::1]] == list(ALL_PRIORS)


def fake_run(spec, elbo_terms, epoch=None, checkpoint=7):
    """A run directory whose metrics.jsonl ends with the given test terms and whose newest
    checkpoint is ckpt-<checkpoint>."""
    row = {"epoch": spec.cfg.num_epochs if epoch is None else epoch}
    row.update({f"test_{k}": v for k, v in elbo_terms.items()})
    os.makedirs(os.path.join(spec.run_dir, "checkpoints"), exist_ok=True)
    write_jsonl(os.path.join(spec.run_dir, "metrics.jsonl"), [row])
    open(os.path.join(spec.run_dir, "checkpoints", f"ckpt-{checkpoint}.index"), "w").close()


def fake_evaluation(spec, generation, reconstruction, checkpoint=7, features="classifier", name=None):
    """An evaluation record of ``spec``'s run in ``ladder evaluate``'s schema."""
    gen, rec = np.asarray(generation, float), np.asarray(reconstruction, float)
    rows = {"generation": gen, "reconstruction": rec, "difference": gen - rec, "real": gen * 0 + 0.1}
    record = {"schema": SCHEMA, "command": "ladder evaluate", "metrics": ["fid"],
              "columns": [{"column": spec.column, "run_dir": spec.run_dir, "prior": spec.cfg.prior,
                           "checkpoint": os.path.join(spec.run_dir, "checkpoints", f"ckpt-{checkpoint}"),
                           "fid": {k: {"mean": float(v.mean()), "values": v.tolist()}
                                   for k, v in rows.items()}}],
              "fid": {"features": features, "fingerprint": f"{features}-net", "label": f"{features}-FID",
                      "num_samples": 100, "repeats": len(gen), "reconstruction": "sampled",
                      "reference_n": 1000}}
    path = os.path.join(spec.run_dir, name or f"evaluation-{features}.json")
    with open(path, "w") as fh:
        json.dump(record, fh)


def table_rows(text, heading):
    """{row label: cells} of the first Markdown table after ``heading``."""
    lines = text.split(heading, 1)[1].splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    rows = {}
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        if "---" not in ln:
            cells = [c.strip() for c in ln.split("|")[1:-1]]
            rows[cells[0]] = cells[1:]
    return rows


def test_results_tables_pool_seeds_and_repeats(tmp_path):
    t1, _ = specs_for(tmp_path, "--priors", "normal,gmm", "--seeds", "0,1,2", "--epochs", "2")
    rng = np.random.default_rng(0)
    values, gens, recs = {}, [], []
    for s in t1:
        terms = dict(zip(("reconstruction", "sigma_term", "entropy", "cross_entropy"),
                         rng.normal(size=4) * 10))
        terms["elbo"] = sum(terms.values())
        values.setdefault(s.column, []).append(terms)
        unfinished = s.column == "gmm" and s.seed == 2  # excluded from the statistics
        fake_run(s, terms, epoch=1 if unfinished else None)
        if s.column == "normal":
            gen, rec = rng.normal(20, 2, size=3), rng.normal(15, 1, size=3)
            fake_evaluation(s, gen, rec)
            if s.seed < 2:
                gens += list(gen)
                recs += list(rec)
            else:  # made at an older checkpoint than the run's newest: left out
                fake_run(s, terms, checkpoint=9)
    record = results.results("mnist_fashion", t1, [], {}, {"tensorflow": "2.x"}, "ladder reproduce")
    text = results.results_markdown(record)
    fid = table_rows(text, "### FID: classifier-FID")
    assert fid["FID"] == ["normal", "gmm"]
    assert fid["seeds evaluated"] == ["2/3", "0/3"]
    assert fid["Generation"] == [f"{np.mean(gens):.2f} ± {np.std(gens, ddof=1):.2f}", "-"]
    diff = np.subtract(gens, recs)
    assert fid["Difference"] == [f"{np.mean(diff):.2f} ± {np.std(diff, ddof=1):.2f}", "-"]
    elbo = table_rows(text, "### Final test negative ELBO")
    assert all(ln.count("|") == 4 for ln in text.splitlines() if ln.startswith("|"))
    assert elbo["seeds finished"] == ["3/3", "2/3"]
    neg = [-v["elbo"] for v in values["normal"]]
    assert elbo["-ELBO (nats/image)"][0] == f"{np.mean(neg):.2f} ± {np.std(neg, ddof=1):.2f}"
    cross = [-v["cross_entropy"] for v in values["gmm"][:2]]
    assert elbo["-cross-entropy -E_q[log p(z)]"][1] == f"{np.mean(cross):.2f} ± {np.std(cross, ddof=1):.2f}"
    assert {label for label, _ in results.ELBO_ROWS} <= set(elbo)
    assert "training: gmm, seed 2" in text and "classifier FID: normal, seed 2" in text
    assert record["budget"]["num_epochs"] == 2 and record["seeds"] == [0, 1, 2]
    assert "tensorflow 2.x" in text and "seeds 0, 1, 2" in text
    assert "2 epochs, batch 256, the whole training split" in text
    # A single seed with one repeat: its value, no spread.
    only = [s for s in t1 if s.seed == 0]
    fake_evaluation(only[0], [12.5], [10.0], name="evaluation-classifier.json")
    one = results.results_markdown(results.results("mnist_fashion", only, [], {}, {}, "c"))
    assert table_rows(one, "### FID: classifier-FID")["Generation"] == ["12.50", "-"]


def test_tables_only_trains_nothing_and_lists_what_is_missing(tmp_path, capsys):
    argv = ["--priors", "normal,gmm", "--seeds", "0", "--epochs", "2", "--out-root", str(tmp_path)]
    t1, _ = specs_for(tmp_path, *argv[:-2])
    fake_run(t1[0], {"elbo": -5.0, "reconstruction": -1.0, "sigma_term": -2.0, "entropy": -1.0,
                     "cross_entropy": -1.0})
    assert reproduce.main([*argv, "--tables-only"]) == 0
    assert "training into" not in capsys.readouterr().out
    assert not os.path.exists(t1[1].run_dir)
    text = (tmp_path / "mnist_fashion" / "results.md").read_text()
    assert table_rows(text, "### Final test negative ELBO")["-ELBO (nats/image)"] == ["5.00", "-"]
    assert f"training: gmm, seed 0 ({t1[1].run_dir})" in text
    # The tables need no FID weights; training and evaluating do, and are refused up front.
    absent = ["--evaluate", "fid-inception", "--fid-weights", str(tmp_path / "absent.npz")]
    assert reproduce.main([*argv, *absent, "--tables-only"]) == 0
    with pytest.raises(SystemExit) as exit_info:
        reproduce.main([*argv, *absent])
    assert exit_info.value.code == 2 and not os.path.exists(t1[1].run_dir)


def test_a_run_of_other_settings_is_reported_never_reused(tmp_path, capsys):
    """A finished run whose recorded config differs from the spec's (a changed --set, or more
    epochs trained than asked) is neither trained, evaluated nor tabulated: exit status 1."""
    from ladder_tf import config as config_lib

    argv = ["--priors", "gmm", "--seeds", "0", "--epochs", "2", "--out-root", str(tmp_path),
            "--evaluate", "classifier"]
    (spec,), _ = specs_for(tmp_path, *argv[:6])
    fake_run(spec, {"elbo": -5.0, "reconstruction": -1.0, "sigma_term": -2.0, "entropy": -1.0,
                    "cross_entropy": -1.0})
    fake_evaluation(spec, [12.5], [10.0])
    config_lib.save(spec.cfg, os.path.join(spec.run_dir, "config.json"))
    before = sorted(os.listdir(spec.run_dir))
    for extra, change in ((["--set", "sigma_floor=false"], "sigma_floor True -> False"),
                          (["--epochs", "1"], "epochs trained 2 -> 1")):
        assert reproduce.main([*argv, *extra]) == 1
        captured = capsys.readouterr()
        assert f"holds a run of other settings ({change})" in captured.err
        assert "training into" not in captured.out and "evaluating" not in captured.out
        record = json.loads((tmp_path / "mnist_fashion" / "results.json").read_text())
        (run,) = record["tables"]["table1"]["runs"]["gmm"]
        assert run["finished"] is False and change in record["problems"][spec.run_dir]
        assert not any(t["seeds_evaluated"]["gmm"] for t in record["tables"]["table1"]["fid"])
        assert sorted(os.listdir(spec.run_dir)) == before
    # The settings it was trained with still read it as finished (its evaluation tabulated).
    assert reproduce.main([*argv, "--tables-only"]) == 0
    text = (tmp_path / "mnist_fashion" / "results.md").read_text()
    assert table_rows(text, "### FID: classifier-FID")["Generation"] == ["12.50"]


def test_d_t_sweep_shares_the_matching_ladder_run(tmp_path):
    t1, t2 = specs_for(tmp_path, "--priors", "ladder", "--d-t", "2,16", "--seeds", "0")
    assert t1[0].cfg.representation_size == 16
    assert t2[1].run_dir == t1[0].run_dir and t2[0].run_dir.endswith(os.path.join("ladder_dt2", "seed0"))


@pytest.mark.e2e
def test_two_priors_one_seed_then_skip(tmp_path, capsys):
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("Fashion-MNIST is not installed")
    argv = ["--dataset", "mnist_fashion", "--priors", "normal,gmm", "--seeds", "0", "--epochs", "1",
            "--steps-per-epoch", "2", "--train-size", "256", "--out-root", str(tmp_path),
            "--no-progress", "--no-download", *TINY]
    assert reproduce.main(argv) == 0
    results_md = tmp_path / "mnist_fashion" / "results.md"
    text = results_md.read_text()
    assert table_rows(text, "### Final test negative ELBO")[""] == ["normal", "gmm"]
    record = json.loads((tmp_path / "mnist_fashion" / "results.json").read_text())
    assert record["tables"]["table1"]["columns"] == ["normal", "gmm"] and record["missing"] == []
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
    assert results_md.read_text() == text
    # More epochs: the Trainer resumes the finished run from its checkpoint (epoch 1 kept).
    first = read_jsonl(tmp_path / "mnist_fashion" / "gmm" / "seed0" / "metrics.jsonl")
    more = [a for a in argv if a != "normal,gmm"]
    more[more.index("--priors") + 1:more.index("--priors") + 1] = ["gmm"]
    more[more.index("--epochs") + 1] = "2"
    assert reproduce.main(more) == 0
    rows = read_jsonl(tmp_path / "mnist_fashion" / "gmm" / "seed0" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0] == first[0]
    assert rows[1]["gmm_accurate_fit"] == 1 and rows[0]["gmm_accurate_fit"] == 1
    assert table_rows(results_md.read_text(), "### Final test negative ELBO")[""] == ["gmm"]


def test_runs_are_trained_evaluated_and_tabulated_one_by_one(tmp_path, monkeypatch):
    """train_and_evaluate: run 1 trained, evaluated, tables written; then run 2; data loaded once."""
    from ladder_tf.workflows import reproduce as workflow

    specs, _ = specs_for(tmp_path, "--priors", "normal,gmm")
    calls, loads = [], []
    finished = set()

    def fake_train(spec, number, load_data, progress, say, warn):
        load_data()
        calls.append(("train", spec.column, number))
        finished.add(spec.run_dir)
        return workflow.Outcome()

    def fake_evaluate(spec, number, features, settings_for, command, say, warn):
        calls.append(("evaluate", spec.column, tuple(features)))
        return workflow.Outcome(failures={spec.run_dir: "x"} if spec.column == "gmm" else {})

    monkeypatch.setattr(workflow, "train_run", fake_train)
    monkeypatch.setattr(workflow, "evaluate_run", fake_evaluate)
    monkeypatch.setattr(workflow, "is_finished", lambda spec: spec.run_dir in finished)
    outcome = workflow.train_and_evaluate(
        specs, lambda: loads.append(1), False, ["classifier"], None, "cmd", print, print,
        after_run=lambda o: calls.append(("tables", len(o.failures))))
    assert calls == [("train", "normal", "[1/2]"), ("evaluate", "normal", ("classifier",)), ("tables", 0),
                     ("train", "gmm", "[2/2]"), ("evaluate", "gmm", ("classifier",)), ("tables", 1)]
    assert loads == [1] and list(outcome.failures) == [specs[1].run_dir]
