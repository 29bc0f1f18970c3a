"""One markdown table of a one-factor-at-a-time study from several ``ladder reproduce`` results.

    python tools/study_table.py --prior ladder --network fid-inception \\
        "paper config=experiments/mnist_fashion/results-standard-ladder.json" \\
        "large network=experiments/mnist_fashion/study-large.json"

Each LABEL=RESULTS gives one row: the ``results.json`` (or its ``.md``) that ``ladder
reproduce --results`` wrote, read for the column of ``--prior``; LABEL=RESULTS#PRIOR reads
that row from PRIOR's column instead (rows of several priors in one table). A row shows
what the run set otherwise than its base config, the epochs trained, the training time (the
sum of the run's epoch wall times, and the median epoch; from the record, or from the run
directory for records written before records kept them), the FID of ``--network`` (generation,
reconstruction, their difference: mean over the column's evaluated seeds and repeats, with
the sample std when there are several values), the final test -ELBO and sigma at the end:
the variable |sigma| and the last epoch's mean sigma in the loss (they differ when the
floor, the batch's mean absolute pixel error, is above the variable).
Runs of several seeds give the mean epoch count and time per seed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ladder_tf.commands.common import error_text, fail, new_parser  # noqa: E402
from ladder_tf.workflows.results import cell as results_cell, training_summary  # noqa: E402

FID_ROWS = ("generation", "reconstruction", "difference")
ELBO_ROW = "-ELBO (nats/image)"


def read_results(path: str) -> dict:
    """The results.json at ``path`` (a ``.md`` path reads its ``.json`` twin)."""
    if path.endswith(".md"):
        path = path[:-3] + ".json"
    elif not path.endswith(".json"):
        path += ".json"
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_times(run: dict) -> tuple[int, float, float, float, float | None]:
    """(epochs trained, sum of epoch seconds, median epoch seconds, final sigma, final sigma in
    the loss or None) of a run entry: from the record's ``training`` when it has one, else
    from the run's metrics.jsonl."""
    t = run.get("training") or training_summary(run["run_dir"])
    if t is None:
        raise ValueError(f"{run['run_dir']}: metrics.jsonl has no epochs")
    return t["epochs"], t["seconds"], t["median_epoch_seconds"], t["final_sigma"], t.get("final_loss_sigma")


def cell(summary: dict | None) -> str:
    """``results.cell`` of a summary, '-' when the results lack it."""
    return results_cell(summary or {"mean": None})


def study_row(label: str, results: dict, prior: str, network: str) -> list[str]:
    """The table row of one results file (see the module docstring)."""
    table = results["tables"]["table1"]
    available = [c for c in table["columns"] if table["runs"].get(c)]
    if prior not in available:
        raise ValueError(f"no {prior!r} runs (columns with runs: {', '.join(available) or 'none'})")
    fids = [f for f in table["fid"] if f["protocol"]["features"] == network]
    rows = fids[0]["rows"] if fids else {}
    differs = table["settings"][prior]["differs"]
    setting = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(differs.items())) or "-"
    runs = [r for r in table["runs"][prior] if r["finished"]]
    times = [run_times(r) for r in runs]
    if times:
        epochs = statistics.mean(t[0] for t in times)
        wall = f"{statistics.mean(t[1] for t in times) / 60:.1f} ({statistics.mean(t[2] for t in times):.0f} s)"
        in_loss = [t[4] for t in times]
        sigma = f"{statistics.mean(t[3] for t in times):.4f} / " + (
            f"{statistics.mean(in_loss):.4f}" if None not in in_loss else "-")
    else:
        epochs, wall, sigma = "-", "-", "-"
    elbo = table["elbo"].get(prior, {}).get(ELBO_ROW)
    fid_cells = [cell(rows.get(name, {}).get(prior)) for name in FID_ROWS]
    return [label, setting, f"{epochs:g}" if times else epochs, wall, *fid_cells, cell(elbo), sigma]


def markdown(rows: list[list[str]], network: str) -> str:
    head = ["run", "set otherwise", "epochs", "training, min (median epoch)",
            f"generation ({network})", f"reconstruction ({network})", "difference",
            "test -ELBO", "sigma: variable / in the loss"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    """This script's command line."""
    p = new_parser(__doc__)
    p.add_argument("rows", nargs="+", metavar="LABEL=RESULTS[#PRIOR]",
                   help="a row label and a results file (and the column to read, else --prior's)")
    p.add_argument("--prior", default="ladder", help="the column rows read without #PRIOR (default: ladder)")
    p.add_argument("--network", default="fid-inception", help="the FID network's name in the results")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    rows = []
    for item in args.rows:
        label, sep, path = item.partition("=")
        path, _, prior = path.partition("#")
        if not sep or not label or not path:
            return fail(f"{item!r}: give LABEL=RESULTS or LABEL=RESULTS#PRIOR (a results.json or its .md)")
        try:
            rows.append(study_row(label, read_results(path), prior or args.prior, args.network))
        except OSError as err:
            return fail(error_text(err))
        except ValueError as err:
            return fail(f"{path}: {err}")
        except KeyError as err:
            return fail(f"{path}: not a results file of ladder reproduce (no {err})")
    sys.stdout.write(markdown(rows, args.network))
    return 0


if __name__ == "__main__":
    sys.exit(main())
