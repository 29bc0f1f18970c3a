"""The comparison's tables: results.md and results.json in the layout of the paper's Table 1.

Per prior (Table 1) or d_t (Table 2), one FID table per feature network and protocol found
in the runs' evaluation files (``RUN_DIR/evaluation*.json``, written by ``ladder evaluate``
in the schema of ``evaluation/report.py``) and the final test negative ELBO with its terms
(the runs' metrics.jsonl). FID cells pool the values of every evaluated seed and repeat:
mean ± sample standard deviation over those values. The header names the base config, and
each table first lists per column the prior VAE's d_t and every key set otherwise than in
the base config (ladder_tf.workflows.reproduce_config).
"""
from __future__ import annotations

import json
import os
import statistics
from typing import Any, Sequence

import numpy as np

from ladder_tf.config import Config
from ladder_tf.evaluation.report import FID_ROWS, markdown_table
from ladder_tf.io_utils import atomic_write_text, read_jsonl
from ladder_tf.workflows.evaluate import PROTOCOL_KEYS, run_evaluations
from ladder_tf.workflows.reproduce import RunSpec, final_row, is_finished
from ladder_tf.workflows.reproduce_config import ConfigChoice, column_settings, format_settings

RESULTS_SCHEMA = "ladder_tf.results/1"
# (label, value in the final metrics row). The four terms, as they enter the negative ELBO,
# add up to it: -ELBO = reconstruction + normaliser - entropy - cross-entropy.
ELBO_ROWS = (  # labels hold no '|' (it would split the markdown cell)
    ("-ELBO (nats/image)", lambda r: -r["test_elbo"]),
    ("reconstruction sum(abs(x - x_hat)) / sigma", lambda r: -r["test_reconstruction"]),
    ("normaliser D log(2 sigma)", lambda r: -r["test_sigma_term"]),
    ("-entropy of q(z given x)", lambda r: -r["test_entropy"]),
    ("-cross-entropy -E_q[log p(z)]", lambda r: -r["test_cross_entropy"]),
)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """{"mean", "std" (sample std; None for one value), "n", "values"} of the finite values."""
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return {"mean": None, "std": None, "n": 0, "values": []}
    return {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
            "n": len(vals), "values": vals}


def cell(s: dict[str, Any]) -> str:
    """'mean ± std', 'mean' for one value, '-' for none."""
    if s["mean"] is None:
        return "-"
    return f"{s['mean']:.2f}" + (f" ± {s['std']:.2f}" if s["std"] is not None else "")


def training_summary(run_dir: str) -> dict[str, Any] | None:
    """How long a run trained, from its metrics.jsonl: {"epochs", "seconds" (sum of the epochs'
    wall seconds), "median_epoch_seconds", "final_sigma" (the variable |sigma| at the end),
    "final_loss_sigma" (the last epoch's mean sigma in the loss: |sigma| or, when
    ``sigma_floor`` is on and higher, the batch's mean absolute pixel error)}; None when it
    has no epoch rows.

    Kept in the results record, so a table of training times needs no run directory.
    """
    rows = read_jsonl(os.path.join(run_dir, "metrics.jsonl"), require=("epoch",))
    if not rows:
        return None
    seconds = [float(r.get("epoch_seconds") or 0.0) for r in rows]
    return {"epochs": int(rows[-1]["epoch"]), "seconds": sum(seconds),
            "median_epoch_seconds": statistics.median(seconds), "final_sigma": rows[-1].get("sigma"),
            "final_loss_sigma": rows[-1].get("train_sigma")}


def _group(specs: Sequence[RunSpec]) -> dict[str, list[RunSpec]]:
    groups: dict[str, list[RunSpec]] = {}
    for s in specs:
        groups.setdefault(s.column, []).append(s)
    return groups


def table_data(specs: Sequence[RunSpec]) -> dict[str, Any]:
    """One table's numbers: per column its runs, ELBO rows and FID rows per protocol."""
    groups = _group(specs)
    finished = {c: [s for s in runs if is_finished(s)] for c, runs in groups.items()}
    final = {c: [final_row(s.run_dir) for s in finished[c]] for c in groups}
    elbo = {c: {label: summary([value(row) for row in final[c]]) for label, value in ELBO_ROWS}
            for c in groups}
    fid: dict[str, dict[str, Any]] = {}
    for c in groups:
        for s in finished[c]:
            for proto, rows in run_evaluations(s.run_dir):
                entry = fid.setdefault(json.dumps([proto[k] for k in PROTOCOL_KEYS]),
                                       {"protocol": proto, "seeds": {}, "values": {}})
                entry["seeds"].setdefault(c, []).append(s.seed)
                for key, _ in FID_ROWS:
                    entry["values"].setdefault(c, {}).setdefault(key, []).extend(rows[key]["values"])
    fid_tables = [{"protocol": e["protocol"],
                   "seeds_evaluated": {c: e["seeds"].get(c, []) for c in groups},
                   "rows": {key: {c: summary(e["values"].get(c, {}).get(key, [])) for c in groups}
                            for key, _ in FID_ROWS}} for e in fid.values()]
    return {"columns": list(groups),
            "runs": {c: [{"seed": s.seed, "run_dir": s.run_dir, "finished": s in finished[c],
                          "training": training_summary(s.run_dir) if s in finished[c] else None}
                         for s in runs] for c, runs in groups.items()},
            "elbo": elbo, "fid": fid_tables}


def table_markdown(title: str, data: dict[str, Any]) -> list[str]:
    """The Markdown of one table: its FID tables, then the ELBO table."""
    cols, runs = data["columns"], data["runs"]
    out = [f"## {title}", "", *settings_markdown(data)]
    for t in data["fid"]:
        p = t["protocol"]
        out += [f"### FID: {p['label']}", "",
                f"{p['num_samples']} generated images, reconstructions of {p['num_samples']} test "
                f"images (capped at the test split) and those real images per repeat, {p['repeats']} "
                f"repeats, reconstructions {p['reconstruction']}, reference statistics of "
                f"{p['reference_n']} training images. Mean ± sample std over every evaluated seed "
                "and repeat; Difference = Generation - Reconstruction, paired per repeat.", ""]
        rows = [["seeds evaluated"] + [f"{len(t['seeds_evaluated'][c])}/{len(runs[c])}" for c in cols]]
        rows += [[label] + [cell(t["rows"][key][c]) for c in cols] for key, label in FID_ROWS]
        out += markdown_table(["FID"] + cols, rows) + [""]
    out += ["### Final test negative ELBO", "",
            "Whole test split, nats per image, mean ± sample std over finished seeds; the four "
            "terms add up to the -ELBO.", ""]
    rows = [["seeds finished"] + [f"{sum(r['finished'] for r in runs[c])}/{len(runs[c])}" for c in cols]]
    rows += [[label] + [cell(data["elbo"][c][label]) for c in cols] for label, _ in ELBO_ROWS]
    return out + markdown_table([""] + cols, rows) + [""]


def budget(specs: Sequence[RunSpec]) -> dict[str, Any]:
    """The training budget shared by the runs (per key: the value, or every distinct value)."""
    keys = ("num_epochs", "steps_per_epoch", "train_size", "batch_size", "block_update", "code_size")
    out = {}
    for k in keys:
        values = list(dict.fromkeys(getattr(s.cfg, k, None) for s in specs))
        out[k] = values[0] if len(values) == 1 else values
    return out


def missing(tables: dict[str, dict[str, Any]]) -> list[str]:
    """One line per unfinished run and per finished run a protocol has not evaluated."""
    lines = []
    for data in tables.values():
        for c, runs in data["runs"].items():
            for r in runs:
                if not r["finished"]:
                    lines.append(f"training: {c}, seed {r['seed']} ({r['run_dir']})")
                    continue
                for t in data["fid"]:
                    if r["seed"] not in t["seeds_evaluated"][c]:
                        lines.append(f"{t['protocol']['features']} FID: {c}, seed {r['seed']} ({r['run_dir']})")
    return list(dict.fromkeys(lines))


def results(dataset: str, table1: Sequence[RunSpec], table2: Sequence[RunSpec],
            problems: dict[str, str], versions: dict[str, Any], command: str,
            base: Config | None = None, config: ConfigChoice | None = None) -> dict[str, Any]:
    """The results record (results.json).

    ``base``: the config every run started from; with it each table records, per column,
    the d_t of a prior-VAE column and every key its runs set otherwise (``settings``).
    ``config``: which base config that was (its name and file).
    """
    specs = list(table1) + list(table2)
    tables = {name: table_data(group) for name, group in (("table1", table1), ("table2", table2)) if group}
    if base is not None:
        for name, group in (("table1", table1), ("table2", table2)):
            if group:
                tables[name]["settings"] = column_settings(group, base)
    return {"schema": RESULTS_SCHEMA, "dataset": dataset, "command": command,
            "config": {"name": config.name, "path": config.shown} if config else None,
            "seeds": sorted({s.seed for s in specs}), "budget": budget(specs), "versions": versions,
            "tables": tables, "missing": missing(tables), "problems": problems}


def settings_markdown(data: dict[str, Any]) -> list[str]:
    """The table of per-column settings (d_t and the keys that differ from the base config)."""
    cols, settings = data["columns"], data.get("settings")
    if not settings:
        return []
    rows = [["d_t (representation_size)"] + [str(settings[c]["d_t"] or "-") for c in cols],
            ["set otherwise than the base config"] + [format_settings(settings[c]["differs"]) for c in cols]]
    return ["### Settings per column", "",
            "d_t: the prior VAE's latent dimension (prior-VAE priors only); then every config key "
            "whose value differs from the base config, besides prior and seed.", "",
            *markdown_table([""] + cols, rows), ""]


def results_markdown(record: dict[str, Any]) -> str:
    """results.md from the results record."""
    b, v = record["budget"], record["versions"]
    # 0 (the config default) or None: the whole split, whole epochs
    steps = f" of {b['steps_per_epoch']} steps" if b["steps_per_epoch"] else ""
    data = f"the first {b['train_size']} training images" if b["train_size"] else "the whole training split"
    out = [f"# Results: {record['dataset']}", "",
           f"Made by `{record['command']}`. Training budget: {b['num_epochs']} epochs{steps}, batch "
           f"{b['batch_size']}, {data}, d_z {b['code_size']}, block updates {b['block_update']}; seeds "
           f"{', '.join(map(str, record['seeds']))}. Software: "
           + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".", ""]
    if record.get("config"):
        out += [f"Base config: {record['config']['name']} (`{record['config']['path']}`).", ""]
    titles = {"table1": "Table 1: priors", "table2": "Table 2: LaDDer, prior latent dimension d_t"}
    for name, data_ in record["tables"].items():
        out += table_markdown(titles[name], data_)
    if record["missing"]:
        out += ["## Still missing", ""] + [f"- {m}" for m in record["missing"]] + [""]
    if record["problems"]:
        out += ["## Runs that did not finish here", ""]
        out += [f"- `{d}`: {msg}" for d, msg in record["problems"].items()] + [""]
    return "\n".join(out)


def write_results(record: dict[str, Any], path: str) -> tuple[str, str]:
    """Write PATH.json and PATH.md (atomically); returns their paths."""
    json_path, md_path = path + ".json", path + ".md"
    atomic_write_text(json_path, json.dumps(record, indent=2) + "\n")
    atomic_write_text(md_path, results_markdown(record))
    return json_path, md_path
