"""tools/study_table.py: one row per results file, values read back exactly."""
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import study_table  # noqa: E402
from ladder_tf.workflows import results as results_module  # noqa: E402


def summary(values):
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "n": len(values), "values": list(values)}


def write_run(tmp_path, name, seconds, sigma):
    run = tmp_path / name
    run.mkdir()
    with open(run / "metrics.jsonl", "w") as f:
        for e, s in enumerate(seconds, 1):
            f.write(json.dumps({"epoch": e, "epoch_seconds": s, "sigma": sigma + e,
                                "train_sigma": sigma + e + 0.5}) + "\n")
    return str(run)


def write_results(tmp_path, name, run_dirs, gen, rec, elbo, differs, prior="ladder"):
    table = {"columns": ["normal", "ladder"],
             "runs": {prior: [{"seed": i, "run_dir": d, "finished": True} for i, d in enumerate(run_dirs)]},
             "elbo": {prior: {"-ELBO (nats/image)": summary(elbo)}},
             "settings": {prior: {"prior": prior, "d_t": 16, "differs": differs}},
             "fid": [{"protocol": {"features": "classifier"}, "rows": {}},
                     {"protocol": {"features": "fid-inception"},
                      "rows": {"generation": {prior: summary(gen)}, "reconstruction": {prior: summary(rec)},
                               "difference": {prior: summary(np.subtract(gen, rec))}}}]}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"schema": "ladder_tf.results/1", "tables": {"table1": table}}))
    return str(path)


def test_rows_read_back_the_results_and_run_times(tmp_path, capsys):
    a = write_run(tmp_path, "a", [60.0, 50.0, 70.0], 0.02)
    b0, b1 = write_run(tmp_path, "b0", [100.0, 120.0], 0.03), write_run(tmp_path, "b1", [90.0, 110.0], 0.05)
    ra = write_results(tmp_path, "ra", [a], [40.0], [30.0], [-900.0], {})
    rb = write_results(tmp_path, "rb", [b0, b1], [50.0, 54.0], [45.0, 46.0], [-910.0, -920.0],
                       {"mnist_network": "large", "sigma_floor": False})
    assert study_table.main(["base=" + ra, "large=" + rb[:-5] + ".md"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    row_a = [c.strip() for c in lines[2].strip("|").split("|")]
    assert row_a == ["base", "-", "3", f"{180 / 60:.1f} (60 s)", "40.00", "30.00", "10.00", "-900.00",
                     f"{0.02 + 3:.4f} / {0.02 + 3.5:.4f}"]
    row_b = [c.strip() for c in lines[3].strip("|").split("|")]
    gen, rec = [50.0, 54.0], [45.0, 46.0]
    assert row_b[1] == 'mnist_network="large", sigma_floor=false'
    assert row_b[2] == "2"
    assert row_b[3] == f"{(220 + 200) / 2 / 60:.1f} ({statistics.mean([110.0, 100.0]):.0f} s)"
    assert row_b[4] == f"{np.mean(gen):.2f} ± {np.std(gen, ddof=1):.2f}"
    assert row_b[5] == f"{np.mean(rec):.2f} ± {np.std(rec, ddof=1):.2f}"
    assert row_b[6] == f"{np.mean(np.subtract(gen, rec)):.2f} ± {np.std(np.subtract(gen, rec), ddof=1):.2f}"
    assert row_b[7] == f"{-915.0:.2f} ± {np.std([-910.0, -920.0], ddof=1):.2f}"
    assert row_b[8] == f"{(0.03 + 2 + 0.05 + 2) / 2:.4f} / {(0.03 + 2.5 + 0.05 + 2.5) / 2:.4f}"


def test_a_row_reads_the_column_its_label_names(tmp_path, capsys):
    run = write_run(tmp_path, "n", [40.0, 44.0], 0.04)
    path = write_results(tmp_path, "rn", [run], [80.0], [50.0], [-890.0], {}, prior="normal")
    assert study_table.main(["--prior", "ladder", "normal prior=" + path + "#normal"]) == 0
    row = [c.strip() for c in capsys.readouterr().out.splitlines()[2].strip("|").split("|")]
    assert row[:8] == ["normal prior", "-", "2", f"{84 / 60:.1f} (42 s)", "80.00", "50.00", "30.00", "-890.00"]
    with pytest.raises(SystemExit) as exit_:  # ladder's column of this record holds no runs
        study_table.main(["ladder=" + path])
    assert exit_.value.code == 2
    assert "no 'ladder' runs" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["nolabel"], "give LABEL=RESULTS"),
    (["x=/nonexistent/results.json"], "No such file"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "study_table.py"), *args],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_missing_column_is_named(tmp_path):
    ra = write_results(tmp_path, "ra", [write_run(tmp_path, "a", [1.0], 0.1)], [1.0], [1.0], [1.0], {})
    with pytest.raises(SystemExit) as err:
        study_table.main(["--prior", "gmm", "x=" + ra])
    assert err.value.code == 2


def test_training_times_come_from_the_record_when_it_keeps_them(tmp_path, capsys):
    run = write_run(tmp_path, "r", [60.0, 50.0, 70.0], 0.02)
    kept = results_module.training_summary(run)
    assert kept == {"epochs": 3, "seconds": 180.0, "median_epoch_seconds": 60.0, "final_sigma": 0.02 + 3,
                    "final_loss_sigma": 0.02 + 3.5}
    path = write_results(tmp_path, "rec", [str(tmp_path / "gone")], [40.0], [30.0], [-900.0], {})
    record = json.loads(open(path).read())
    record["tables"]["table1"]["runs"]["ladder"][0]["training"] = kept  # the run directory is gone
    open(path, "w").write(json.dumps(record))
    assert study_table.main(["base=" + path]) == 0
    row = [c.strip() for c in capsys.readouterr().out.splitlines()[2].strip("|").split("|")]
    assert row[2:4] == ["3", "3.0 (60 s)"] and row[-1] == f"{0.02 + 3:.4f} / {0.02 + 3.5:.4f}"
    del record["tables"]["table1"]["runs"]["ladder"][0]["training"]["final_loss_sigma"]  # older records
    open(path, "w").write(json.dumps(record))
    assert study_table.main(["base=" + path]) == 0
    row = [c.strip() for c in capsys.readouterr().out.splitlines()[2].strip("|").split("|")]
    assert row[-1] == f"{0.02 + 3:.4f} / -"
