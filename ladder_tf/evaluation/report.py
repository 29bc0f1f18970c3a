"""Result tables: a JSON record, and Markdown in the layout of the paper's Table 1.

Table 1 has one column per model (named by its prior) and the rows Generation,
Reconstruction, Difference (generation minus reconstruction, paired per repeat) and
Real image, each "mean ± std" over the repeats. A second table gives log p(x).
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

from ladder_tf.io_utils import atomic_write_text

SCHEMA = "ladder_tf.evaluation/1"  # the "schema" key of every record ``ladder evaluate`` writes
FID_ROWS = (("generation", "Generation"), ("reconstruction", "Reconstruction"),
            ("difference", "Difference"), ("real", "Real image"))


def column_names(names: Sequence[str], run_dirs: Sequence[str]) -> list[str]:
    """Prior names as columns; repeated names get their run folder appended."""
    out = []
    for name, run_dir in zip(names, run_dirs):
        if list(names).count(name) > 1:
            name = f"{name} ({os.path.basename(os.path.normpath(run_dir))})"
        out.append(name)
    # still equal (same folder names): number them
    return [f"{c} #{i + 1}" if out.count(c) > 1 else c for i, c in enumerate(out)]


def format_value(summary: dict | None, digits: int = 2, spread_key: str = "std") -> str:
    """"12.34 ± 0.56", or "12.34" without a spread, or "n/a"."""
    if not summary or summary.get("mean") is None:
        return "n/a"
    text = f"{summary['mean']:.{digits}f}"
    spread = summary.get(spread_key)
    return text + (f" ± {spread:.{digits}f}" if spread is not None else "")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table (cells must hold no '|')."""
    return (["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
            + ["| " + " | ".join(r) + " |" for r in rows])


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return "\n".join(markdown_table(header, rows))


def fid_markdown(result: dict[str, Any]) -> str:
    """The Table 1 layout of ``result['columns'][*]['fid']``."""
    cols = [c for c in result["columns"] if "fid" in c]
    if not cols:
        return ""
    fid = result["fid"]
    spread = ("mean ± sample std over " + f"{fid['repeats']} repeats") if fid["repeats"] > 1 else "1 repeat"
    ref_of = fid.get("reference_of", fid["reference_n"])
    reference = (f"the training split ({ref_of} images)" if fid["reference_n"] == ref_of else
                 f"a fixed random subset of {fid['reference_n']} of the {ref_of} training images")
    title = (f"### FID: {fid['label']}\n\nReference: {reference}. "
             f"Each repeat: {fid['num_samples']} generated images, the reconstructions of "
             f"{fid['num_test']} test images, and those real test images; {spread}. "
             "Difference = Generation - Reconstruction (paired per repeat). Lower is better.")
    if fid.get("sampling"):
        title += "\n\n" + "\n".join(f"- {label}: {fid['sampling'][key]}" for key, label in FID_ROWS
                                    if key in fid["sampling"])
    rows = [[label] + [format_value(c["fid"][key]) for c in cols] for key, label in FID_ROWS]
    return title + "\n\n" + _table(["FID"] + [c["column"] for c in cols], rows)


def nll_markdown(result: dict[str, Any]) -> str:
    """log p(x) per model: nats per image and bits per dimension (± standard error)."""
    cols = [c for c in result["columns"] if "nll" in c]
    if not cols:
        return ""
    nll = result["nll"]
    title = (f"### Log-likelihood (importance sampled)\n\nlog p(x) on {nll['n_images']} test images "
             f"with k = {nll['n_samples']} samples of q(z|x) (log p(z) of prior-VAE priors "
             f"estimated with {nll['prior_samples']} samples of q(t|z)); Laplace likelihood at the "
             "trained |sigma|; mean ± standard error over images. Higher log p(x) is better.")

    def cell(c, key, spread, digits):
        v = c["nll"]
        return "unsupported" if "unsupported" in v else format_value(
            {"mean": v[key], "sem": v[spread]}, digits, "sem")

    rows = [["log p(x) (nats/image)"] + [cell(c, "log_px_nats", "log_px_sem", 2) for c in cols],
            ["bits/dim"] + [cell(c, "bits_per_dim", "bits_per_dim_sem", 4) for c in cols],
            ["log p(z)"] + [c["nll"].get("prior_density", "-") for c in cols]]
    notes = [f"- {c['column']}: {c['nll']['unsupported']}" for c in cols if "unsupported" in c["nll"]]
    return title + "\n\n" + _table([""] + [c["column"] for c in cols], rows) + (
        "\n\n" + "\n".join(notes) if notes else "")


def markdown(result: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    parts = ["## Evaluation", "Models: " + ", ".join(f"`{c['column']}` = {c['run_dir']} "
                                                    f"({c['dataset']})" for c in result["columns"])]
    parts += [p for p in (fid_markdown(result), nll_markdown(result)) if p]
    return "\n\n".join(parts) + "\n"


class ReportError(ValueError):
    """A file that is not an evaluation record of this schema (the message says why)."""


def read_report(path: str) -> dict[str, Any]:
    """The evaluation record at ``path``; ReportError for damaged JSON or another schema."""
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise ReportError(f"{path}: not readable as JSON ({err})") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        found = record.get("schema") if isinstance(record, dict) else None
        raise ReportError(f"{path}: schema {found!r}, not {SCHEMA!r}; evaluate the run again")
    return record


def run_columns(record: dict[str, Any], run_dir: str) -> list[dict[str, Any]]:
    """The record's columns that evaluated ``run_dir`` (paths compared after resolving)."""
    target = os.path.realpath(run_dir)
    return [c for c in record.get("columns", []) if os.path.realpath(c.get("run_dir", "")) == target]


def output_paths(out: str) -> tuple[str, str]:
    """(json, md) paths for ``--out``: PATH.json/.md, or PATH and PATH with .md."""
    root, ext = os.path.splitext(out)
    return (out, root + ".md") if ext.lower() == ".json" else (out + ".json", out + ".md")


def write_report(result: dict[str, Any], out: str) -> tuple[str, str]:
    """Write the JSON and the Markdown atomically; returns their paths."""
    json_path, md_path = output_paths(out)
    atomic_write_text(json_path, json.dumps(result, indent=2, sort_keys=False) + "\n")
    atomic_write_text(md_path, markdown(result))
    return json_path, md_path
