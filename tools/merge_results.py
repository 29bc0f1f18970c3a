"""One results record from several ``ladder reproduce`` results of the same settings.

    python tools/merge_results.py experiments/a/results.json experiments/b/results.json \\
        --out experiments/merged/results

Seeds trained and evaluated apart (another day, another machine) make one table: per table
and column the runs, the final test -ELBO rows and each FID network's rows are put together
seed by seed, in seed order (columns in the tables' order: priors as the registry lists
them, d_t ascending), as one ``ladder reproduce`` over all the seeds would have written
them (each pooled cell recomputed over every seed's values). The records must share the data
set, the base config and the training budget; a (column, seed) in two records is refused.
Writes OUT.json and OUT.md, the layout ``--results`` writes, so ``tools/paper_table.py`` and
``tools/study_table.py`` read the merged record as they read one run's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ladder_tf.commands.common import error_text, fail, new_parser  # noqa: E402
from ladder_tf.evaluation.report import FID_ROWS  # noqa: E402
from ladder_tf.prior_registry import PRIOR_NAMES  # noqa: E402
from ladder_tf.workflows.evaluate import PROTOCOL_KEYS  # noqa: E402
from ladder_tf.workflows.results import missing, summary, write_results  # noqa: E402
from study_table import read_results  # noqa: E402  (this folder is on sys.path)

SHARED = ("schema", "dataset", "config", "budget")


def by_seed(values: list[float], seeds: list[int], what: str) -> dict[int, list[float]]:
    """Pooled values (every seed's, equally many, in ``seeds`` order) -> {seed: its values}."""
    if not seeds:
        return {}
    if len(values) % len(seeds):
        raise ValueError(f"{what}: {len(values)} values do not split over seeds {seeds}")
    size = len(values) // len(seeds)
    return {s: values[i * size:(i + 1) * size] for i, s in enumerate(seeds)}


def pooled(per_seed: dict[int, list[float]]) -> dict:
    """``summary`` of every seed's values, in seed order."""
    return summary([v for s in sorted(per_seed) for v in per_seed[s]])


def column_key(column: str) -> tuple:
    """Table order: Table 1's priors as the registry lists them, Table 2's "d_t = N" by N."""
    if column in PRIOR_NAMES:
        return (0, PRIOR_NAMES.index(column), column)
    if column.startswith("d_t = ") and column[6:].isdigit():
        return (1, int(column[6:]), column)
    return (2, 0, column)


def merge_table(tables: list[dict]) -> dict:
    """One table (``results.table_data``'s layout) from the same table of several records."""
    columns = sorted(dict.fromkeys(c for t in tables for c in t["columns"]), key=column_key)
    runs: dict[str, dict[int, dict]] = {c: {} for c in columns}
    elbo: dict[str, dict[str, dict[int, list[float]]]] = {c: {} for c in columns}
    fid: dict[str, dict] = {}
    settings: dict[str, dict] = {}
    for t in tables:
        for c in t["columns"]:
            for r in t["runs"][c]:
                if r["seed"] in runs[c]:
                    raise ValueError(f"column {c!r}, seed {r['seed']} is in two records")
                runs[c][r["seed"]] = r
            finished = [r["seed"] for r in t["runs"][c] if r["finished"]]
            for label, s in t["elbo"][c].items():
                elbo[c].setdefault(label, {}).update(by_seed(s["values"], finished, f"{c}: {label}"))
            if c in t.get("settings", {}):
                if settings.setdefault(c, t["settings"][c]) != t["settings"][c]:
                    raise ValueError(f"column {c!r} has different settings in two records")
        for f in t["fid"]:
            entry = fid.setdefault(json.dumps([f["protocol"].get(k) for k in PROTOCOL_KEYS]),
                                   {"protocol": f["protocol"], "values": {}})
            for c, seeds in f["seeds_evaluated"].items():
                for key, _ in FID_ROWS:
                    got = by_seed(f["rows"][key][c]["values"], seeds, f"{c}: {key} FID")
                    entry["values"].setdefault(c, {}).setdefault(key, {}).update(got)
    out = {"columns": columns,
           "runs": {c: [runs[c][s] for s in sorted(runs[c])] for c in columns},
           "elbo": {c: {label: pooled(v) for label, v in elbo[c].items()} for c in columns},
           "fid": [{"protocol": e["protocol"],
                    "seeds_evaluated": {c: sorted(e["values"].get(c, {}).get("generation", {}))
                                        for c in columns},
                    "rows": {key: {c: pooled(e["values"].get(c, {}).get(key, {})) for c in columns}
                             for key, _ in FID_ROWS}} for e in fid.values()]}
    if settings:
        out["settings"] = settings
    return out


def merge(records: list[dict]) -> dict:
    """The merged record (see the module docstring); ``ValueError`` for records that differ."""
    first = records[0]
    for r in records[1:]:
        for key in SHARED:
            if r.get(key) != first.get(key):
                raise ValueError(f"the records differ in {key!r}: {first.get(key)!r} and {r.get(key)!r}")
    names = list(dict.fromkeys(n for r in records for n in r["tables"]))
    tables = {n: merge_table([r["tables"][n] for r in records if n in r["tables"]]) for n in names}
    versions = {k: " / ".join(dict.fromkeys(str(r["versions"].get(k)) for r in records))
                for k in first["versions"]}
    return {**{k: first.get(k) for k in SHARED},
            "command": "; ".join(dict.fromkeys(r["command"] for r in records)),
            "seeds": sorted({s for r in records for s in r["seeds"]}), "versions": versions,
            "tables": tables, "missing": missing(tables),
            "problems": {k: v for r in records for k, v in r["problems"].items()}}


def parser() -> argparse.ArgumentParser:
    """This script's command line."""
    p = new_parser(__doc__)
    p.add_argument("results", nargs="+", help="results.json (or .md) files of ladder reproduce")
    p.add_argument("--out", required=True, help="write OUT.json and OUT.md")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if len(args.results) < 2:
        return fail("give at least two results files to merge")
    try:
        record = merge([read_results(path) for path in args.results])
        json_path, md_path = write_results(record, args.out)
    except OSError as err:
        return fail(error_text(err))
    except (KeyError, TypeError, ValueError) as err:
        return fail(f"cannot merge these results files: {err}")
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
