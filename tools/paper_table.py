"""The docs' tables: a ``ladder reproduce`` results file next to the paper's Table 1 or 2.

    python tools/paper_table.py --dataset mnist_digit --table 1 \\
        experiments/mnist_digit/results.json --standard experiments/mnist_digit/results-standard.json
    python tools/paper_table.py --dataset mnist_digit --table 2 experiments/mnist_digit/results-dt.json

For each FID row (generation, reconstruction, difference, real image) of the first FID
network in RESULTS (classifier-FID in the shipped commands): the pooled cell (mean ± sample
std over every evaluated seed and repeat, as ``results.md`` has it), one value per seed
(each seed's mean over its repeats), and the paper's row. ``--standard`` adds the rows of
a second results file's standard-FID evaluations (per seed when there are several). Then the
final test -ELBO and the -E_q[log p(z)] row. ``--brief LABEL`` prints Table 1 in brief
instead: a row per prior, "generation / difference" (means) of the paper and of each FID
network, as the README has it. The paper's numbers are the supplementary's
Tables 1 and 2 (Inception FID, its own protocol): compare orderings and gaps, not values.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ladder_tf.commands.common import error_text, fail, new_parser  # noqa: E402
from study_table import cell as pooled, read_results  # noqa: E402  (this folder is on sys.path)

PRIORS = ("normal", "vampprior", "gmm", "hierarchical", "ladder")
FID_ROWS = (("generation", "Generation"), ("reconstruction", "Reconstruction"),
            ("difference", "Difference"), ("real", "Real image"))
ELBO_ROWS = (("-ELBO (nats/image)", "test -ELBO (nats/image)"),
             ("-cross-entropy -E_q[log p(z)]", "test -cross-entropy -E_q[log p(z)]"))
# The supplementary's Table 1 (columns PRIORS) and Table 2 (d_t 2, 4, 8, 16): Inception FID.
PAPER = {
    ("mnist_digit", 1): {
        "generation": ("401.4 ± 4.4", "47.2 ± 3.6", "2.3 ± 0.5", "52.4 ± 4.7", "6.4 ± 1.3"),
        "reconstruction": ("2.1 ± 0.8", "1.4 ± 0.4", "2.5 ± 0.8", "5.4 ± 1.4", "2.4 ± 0.4"),
        "difference": ("399.3 ± 5.2", "45.8 ± 4.0", "-0.2 ± 1.3", "47.0 ± 3.3", "4.0 ± 1.7"),
        "real": ("2.3 ± 0.4",) * 5},
    ("mnist_fashion", 1): {
        "generation": ("266.1 ± 2.4", "23.6 ± 1.2", "6.0 ± 1.0", "243.8 ± 2.9", "5.2 ± 0.9"),
        "reconstruction": ("3.2 ± 0.4", "3.0 ± 0.2", "2.9 ± 0.4", "1.8 ± 0.2", "1.0 ± 0.4"),
        "difference": ("262.9 ± 2.8", "20.6 ± 1.4", "3.1 ± 1.4", "242.0 ± 3.1", "4.2 ± 1.3"),
        "real": ("0.4 ± 0.1",) * 5},
    ("mnist_digit", 2): {
        "generation": {2: "58.7 ± 1.8", 4: "35.1 ± 8.1", 8: "6.4 ± 1.3", 16: "6.9 ± 0.8"}},
    ("mnist_fashion", 2): {
        "generation": {2: "25.3 ± 1.6", 4: "9.9 ± 1.2", 8: "5.5 ± 0.7", 16: "5.2 ± 0.9"}},
}


def per_seed_means(summary: dict, n_seeds: int) -> list[float]:
    """Each seed's mean: the pooled values hold every seed's repeats in seed order, equally many."""
    values = summary.get("values") or []
    if n_seeds == 0 or len(values) % n_seeds:
        return []
    size = len(values) // n_seeds
    return [statistics.mean(values[i * size:(i + 1) * size]) for i in range(n_seeds)]


def slashed(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "-"


def per_seed_label(seed_lists: list[list[int]]) -> str:
    """'per seed (0 / 1)': the seeds of the column with the most of them."""
    seeds = max(seed_lists, key=len, default=[])
    return f"per seed ({' / '.join(str(s) for s in seeds)})" if seeds else "per seed"


def fid_rows(fid: dict, columns: list[str], name: str) -> dict[str, list[list[str]]]:
    """Per FID row key: this package's pooled row, then one value per seed when several."""
    seeds = {c: fid["seeds_evaluated"].get(c, []) for c in columns}
    out = {}
    for key, label in FID_ROWS:
        cells = {c: fid["rows"][key].get(c) or {} for c in columns}
        rows = [[f"{label}, {name} (this package)"] + [pooled(cells[c]) for c in columns]]
        if max(len(s) for s in seeds.values()) > 1 and key != "real":
            rows.append([per_seed_label(list(seeds.values()))]
                        + [slashed(per_seed_means(cells[c], len(seeds[c]))) for c in columns])
        out[key] = rows
    return out


def paper_row(dataset: str, number: int, key: str, label: str, columns: list[str]) -> list[list[str]]:
    """The paper's row of ``key`` (none where the paper has none)."""
    paper = PAPER.get((dataset, number), {}).get(key)
    if paper is None:
        return []
    if number == 1:
        cells = [paper[PRIORS.index(c)] if c in PRIORS else "-" for c in columns]
    else:
        cells = [paper.get(int(c.split("=")[1]), "-") for c in columns]
    return [[f"{label}, Inception FID (paper, Table {number})"] + cells]


def build(dataset: str, number: int, results: dict, standard: dict | None) -> str:
    """The markdown table (see the module docstring)."""
    table = results["tables"][f"table{number}"]
    columns = table["columns"]
    ours = fid_rows(table["fid"][0], columns, results_network_name(table)) if table["fid"] else {}
    rows: list[list[str]] = []
    for key, label in FID_ROWS:
        rows += ours.get(key, []) + paper_row(dataset, number, key, label, columns)
    if standard is not None:
        for fid in standard["tables"][f"table{number}"]["fid"]:
            if fid["protocol"]["features"] == "fid-inception":
                rows += [r for key, _ in FID_ROWS for r in fid_rows(fid, columns, "standard FID")[key]]
    finished = [[r["seed"] for r in table.get("runs", {}).get(c, []) if r.get("finished")] for c in columns]
    for key, label in ELBO_ROWS:
        cells = [table["elbo"].get(c, {}).get(key) for c in columns]
        rows.append([label] + [pooled(s) for s in cells])
        if any(s and s.get("n", 0) > 1 for s in cells):
            rows.append([per_seed_label(finished)] + [slashed((s or {}).get("values", [])) for s in cells])
    lines = ["| | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def gen_diff(fid: dict, columns: list[str]) -> dict[str, str]:
    """Per column, 'generation / difference' of one FID network: each the mean over every
    evaluated seed and repeat, 2 decimals ('-' where the results lack it)."""
    def mean(key: str, column: str) -> str:
        summary = fid["rows"][key].get(column) or {}
        return "-" if summary.get("mean") is None else f"{summary['mean']:.2f}"
    return {c: f"{mean('generation', c)} / {mean('difference', c)}" for c in columns}


def brief_columns(label: str, results: dict, standard: dict | None) -> list[tuple[str, dict[str, str]]]:
    """(heading, cells per prior) of Table 1's FID networks in RESULTS, then the standard-FID
    ones of STANDARD where RESULTS has none: the columns of ``brief`` for one set of runs."""
    table = results["tables"]["table1"]
    fids = list(table["fid"])
    if standard is not None and not any(f["protocol"]["features"] == "fid-inception" for f in fids):
        fids += [f for f in standard["tables"]["table1"]["fid"] if f["protocol"]["features"] == "fid-inception"]
    return [(f"{label}, {network_name(fid)}", gen_diff(fid, table["columns"])) for fid in fids]


def brief(dataset: str, columns: list[tuple[str, dict[str, str]]]) -> str:
    """Table 1 in brief: a row per prior with 'generation / difference' cells, the paper's
    (Inception FID, means) first, then one column per (heading, cells per prior)."""
    paper = PAPER[(dataset, 1)]
    rows = [[prior, " / ".join(paper[k][i].split(" ±")[0] for k in ("generation", "difference"))]
            + [cells.get(prior, "-") for _, cells in columns] for i, prior in enumerate(PRIORS)]
    head = ["prior", "paper, Inception FID"] + [heading for heading, _ in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def network_name(fid: dict) -> str:
    """'classifier-FID' or 'standard FID': the name of one FID evaluation's network."""
    return "standard FID" if fid["protocol"]["features"] == "fid-inception" else "classifier-FID"


def results_network_name(table: dict) -> str:
    """'classifier-FID' or 'standard FID': the name of the first FID network of a table."""
    return network_name(table["fid"][0]) if table["fid"] else "FID"


def parser() -> argparse.ArgumentParser:
    """This script's command line."""
    p = new_parser(__doc__)
    p.add_argument("results", help="the results.json (or .md) of ladder reproduce")
    p.add_argument("--dataset", required=True, choices=("mnist_digit", "mnist_fashion"))
    p.add_argument("--table", type=int, choices=(1, 2), default=1)
    p.add_argument("--standard", help="a results file with the standard-FID evaluations of the same runs")
    p.add_argument("--brief", metavar="LABEL",
                   help="Table 1 in brief instead: a row per prior, 'generation / difference' (means) "
                        "of the paper and of each FID network, its columns headed LABEL")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.brief is not None and args.table != 1:
        return fail(f"--brief makes Table 1 only, not Table {args.table}")
    try:
        results = read_results(args.results)
        standard = read_results(args.standard) if args.standard else None
        if args.brief is not None:
            text = brief(args.dataset, brief_columns(args.brief, results, standard))
        else:
            text = build(args.dataset, args.table, results, standard)
    except OSError as err:
        return fail(error_text(err))
    except (KeyError, ValueError, IndexError) as err:
        return fail(f"not a results file of ladder reproduce with Table {args.table} ({err!r})")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
