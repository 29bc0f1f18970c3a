"""tools/merge_results.py: records of seeds run apart merge into the record of one run over all seeds."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ladder_tf.workflows.results import ELBO_ROWS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import merge_results  # noqa: E402
import paper_table  # noqa: E402

COLUMNS = ["normal", "ladder"]
PROTOCOL = {"features": "classifier", "fingerprint": "abc", "num_samples": 100, "repeats": 3,
            "reconstruction": "mean", "reference_n": 1000, "label": "classifier-FID"}
# per column and seed: three FID repeats (generation; reconstruction is 1 less) and a final -ELBO
GEN = {"normal": {0: [100.0, 102.0, 104.0], 1: [80.0, 82.0, 90.0]},
       "ladder": {0: [6.0, 6.5, 7.0], 1: [5.0, 5.5, 4.0]}}
BUDGET = {"num_epochs": 30, "steps_per_epoch": 0, "train_size": 0, "batch_size": 100,
          "block_update": "sequential", "code_size": 16}
ELBO = {"normal": {0: -900.0, 1: -910.0}, "ladder": {0: -905.0, 1: -925.0}}


def stats(values):
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "n": len(values), "values": [float(v) for v in values]}


def record(seeds, command="ladder reproduce", columns=COLUMNS):
    """What one ``ladder reproduce --seeds SEEDS`` over ``columns`` records (its seeds' values, in order)."""
    if columns != COLUMNS:
        rec = record(seeds, command)
        for t in rec["tables"].values():
            t["columns"] = list(columns)
            for key in ("runs", "elbo", "settings"):
                t[key] = {c: t[key][c] for c in columns}
            for f in t["fid"]:
                f["seeds_evaluated"] = {c: f["seeds_evaluated"][c] for c in columns}
                f["rows"] = {k: {c: v[c] for c in columns} for k, v in f["rows"].items()}
        return rec
    gen = {c: [v for s in seeds for v in GEN[c][s]] for c in COLUMNS}
    rows = {"generation": {c: stats(gen[c]) for c in COLUMNS},
            "reconstruction": {c: stats(np.subtract(gen[c], 1.0)) for c in COLUMNS},
            "difference": {c: stats(np.ones(len(gen[c]))) for c in COLUMNS},
            "real": {c: stats(np.full(len(gen[c]), 0.5)) for c in COLUMNS}}
    table = {"columns": COLUMNS,
             "runs": {c: [{"seed": s, "run_dir": f"x/{c}/seed{s}", "finished": True} for s in seeds] for c in COLUMNS},
             "elbo": {c: {label: stats([ELBO[c][s] + i for s in seeds]) for i, (label, _) in enumerate(ELBO_ROWS)}
                      for c in COLUMNS},
             "fid": [{"protocol": PROTOCOL, "seeds_evaluated": {c: list(seeds) for c in COLUMNS}, "rows": rows}],
             "settings": {c: {"prior": c, "d_t": None, "differs": {}} for c in COLUMNS}}
    return {"schema": "ladder_tf.results/1", "dataset": "mnist_digit", "command": command,
            "config": None, "seeds": list(seeds), "budget": BUDGET,
            "versions": {"tensorflow": "2.21.0"}, "tables": {"table1": table}, "missing": [], "problems": {}}


def test_two_seeds_run_apart_equal_one_run_over_both(tmp_path):
    paths = []
    for seeds in ([1], [0]):  # given out of seed order: the merge restores it
        path = tmp_path / f"seed{seeds[0]}.json"
        path.write_text(json.dumps(record(seeds, f"ladder reproduce --seeds {seeds[0]}")))
        paths.append(str(path))
    out = tmp_path / "merged"
    assert merge_results.main(paths + ["--out", str(out)]) == 0
    merged, whole = json.loads((tmp_path / "merged.json").read_text()), record([0, 1])
    for key in ("runs", "elbo", "fid", "columns", "settings"):
        assert merged["tables"]["table1"][key] == whole["tables"]["table1"][key], key
    assert merged["seeds"] == [0, 1] and merged["missing"] == []
    assert merged["command"] == "ladder reproduce --seeds 1; ladder reproduce --seeds 0"
    assert "| normal | ladder |" in (tmp_path / "merged.md").read_text()
    # the docs' table reads the merged record: per-seed means in seed order
    text = paper_table.build("mnist_digit", 1, merged, None)
    seed_row = text.splitlines()[3]
    assert seed_row.split("|")[2].strip() == f"{np.mean(GEN['normal'][0]):.2f} / {np.mean(GEN['normal'][1]):.2f}"


def test_overlapping_seeds_and_different_budgets_are_refused(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(record([0])))
    b.write_text(json.dumps(record([0, 1])))
    with pytest.raises(ValueError, match="seed 0 is in two records"):
        merge_results.merge([record([0]), record([0, 1])])
    other = record([1])
    other["budget"] = {**BUDGET, "num_epochs": 100}
    with pytest.raises(ValueError, match="differ in 'budget'"):
        merge_results.merge([record([0]), other])
    cli = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "merge_results.py"), str(a), str(b),
                          "--out", str(tmp_path / "m")], capture_output=True, text=True)
    assert cli.returncode == 2
    assert cli.stderr.strip() == "error: cannot merge these results files: column 'normal', seed 0 is in two records"
    assert not (tmp_path / "m.json").exists()


def test_columns_from_different_records_come_in_table_order():
    merged = merge_results.merge([record([0], columns=["ladder"]), record([0], columns=["normal"]),
                                  record([1])])
    table, whole = merged["tables"]["table1"], record([0, 1])["tables"]["table1"]
    assert table["columns"] == ["normal", "ladder"]
    assert table["fid"] == whole["fid"] and table["elbo"] == whole["elbo"]
    assert merge_results.column_key("d_t = 16") > merge_results.column_key("d_t = 4")
