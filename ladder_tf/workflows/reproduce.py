"""Reproduce the paper's comparison: train priors x seeds on one data set, tabulate the results.

    ladder reproduce --dataset mnist_fashion --priors normal,gmm --seeds 0,1,2
    ladder reproduce --dataset mnist_fashion --d-t 2,4,8,16   # supplementary Table 2

Runs go to ``<out-root>/<exp_name>/<prior>/seed<k>/`` (the sweep to ``ladder_dt<k>/seed<s>``),
one after another in this process. A run whose metrics.jsonl already has the last epoch is
skipped; an interrupted one is resumed by the Trainer from its checkpoints; one that another
process is training (it holds the run's lock) is skipped here with a warning, so several
workers can share one comparison. The table
(``<out-root>/<exp_name>/results.md``, also printed) has one column per prior and, as mean
+/- standard deviation over seeds, the final test negative ELBO and its terms, plus any rows
an evaluation left in ``<run_dir>/eval.json`` (see ``EVAL_ROWS``).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ladder_tf import config as config_lib
from ladder_tf.commands.common import (add_data_flags, add_run_length_flags, config_path, error_text, fail,
                           new_parser, quiet_tensorflow)
from ladder_tf.config import DATASETS, PRIOR_ALIASES, PRIOR_NAMES, Config, ConfigError
from ladder_tf.io_utils import atomic_write_text, read_jsonl
from ladder_tf.workflows.resume import config_changes, format_changes, recorded_config

ALL_PRIORS = ("normal", "vampprior", "gmm", "hierarchical", "ladder")
# (label, value in the final metrics row). The four terms, as they enter the negative ELBO,
# add up to it: -ELBO = reconstruction + normaliser - entropy - cross-entropy.
ELBO_ROWS = (  # labels hold no '|' (it would split the markdown cell)
    ("-ELBO (nats/image)", lambda r: -r["test_elbo"]),
    ("reconstruction sum(abs(x - x_hat)) / sigma", lambda r: -r["test_reconstruction"]),
    ("normaliser D log(2 sigma)", lambda r: -r["test_sigma_term"]),
    ("-entropy of q(z given x)", lambda r: -r["test_entropy"]),
    ("-cross-entropy -E_q[log p(z)]", lambda r: -r["test_cross_entropy"]),
)
# Rows read from <run_dir>/eval.json when an evaluation wrote one: key -> label. A run's value
# is eval[key + "_mean"] (or eval[key]); any other "<key>_mean" entry gets a row labelled key.
EVAL_ROWS = {
    "fid_generation": "FID generation",
    "fid_reconstruction": "FID reconstruction",
    "fid_difference": "FID difference",
}
EVAL_FILE = "eval.json"


@dataclass
class RunSpec:
    """One training run: its table column, effective config and directory."""

    column: str
    cfg: Config
    run_dir: str

    @property
    def seed(self) -> int:
        return self.cfg.seed


# -- arguments ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``ladder reproduce`` arguments, grouped as --help shows them."""
    p = new_parser(__doc__.split("\n\nRuns go")[0])
    runs = p.add_argument_group("which runs")
    runs.add_argument("--dataset", default="mnist_fashion", choices=list(DATASETS),
                      help="data set; its config is the shipped <dataset> config")
    runs.add_argument("--priors", metavar="LIST", help="comma-separated priors (default: all five, "
                      "or none besides the sweep when --d-t is given): " + ",".join(ALL_PRIORS))
    runs.add_argument("--seeds", default="0", metavar="LIST", help="comma-separated seeds, e.g. 0,1,2")
    runs.add_argument("--d-t", metavar="LIST", help="LaDDer sweep over the prior latent dimension, "
                      "e.g. 2,4,8,16 (the supplementary's Table 2)")
    runs.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override any config key for every run (repeatable)")
    add_run_length_flags(p)
    add_data_flags(p)
    out = p.add_argument_group("outputs")
    out.add_argument("--out-root", default="experiments", metavar="DIR",
                     help="root of the run directories")
    out.add_argument("--no-progress", action="store_true",
                     help="no progress bars: one line per epoch only (for batch jobs)")
    return p


def parse_int_list(text: str, flag: str, minimum: int) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; ConfigError on anything else (or duplicates)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} expects comma-separated integers, got {text!r}") from None
    if not values:
        raise ConfigError(f"{flag} is empty")
    if min(values) < minimum:
        raise ConfigError(f"{flag} values must be >= {minimum}, got {text!r}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{flag} lists a value twice: {text!r}")
    return values


def parse_priors(text: str) -> list[str]:
    """'normal,GMM' -> ['normal', 'gmm'] (original spellings accepted)."""
    names = [PRIOR_ALIASES.get(p.strip(), p.strip()) for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in PRIOR_NAMES]
    if unknown or not names:
        raise ConfigError(f"--priors: unknown prior {', '.join(unknown) or '(none given)'}; "
                          f"choose from {','.join(ALL_PRIORS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"--priors lists a prior twice: {text!r}")
    return names


def build_specs(args: argparse.Namespace) -> tuple[list[RunSpec], list[RunSpec]]:
    """Every run to do: (the prior comparison, the d_t sweep). Raises ConfigError."""
    seeds = parse_int_list(args.seeds, "--seeds", 0)
    d_ts = parse_int_list(args.d_t, "--d-t", 1) if args.d_t else []
    if args.priors is not None:
        priors = parse_priors(args.priors)
    else:
        priors = [] if d_ts else list(ALL_PRIORS)
    path = config_path(args.dataset)
    base = config_lib.load(path, args.set, exp_name=args.dataset, num_epochs=args.epochs,
                           steps_per_epoch=args.steps_per_epoch, train_size=args.train_size)
    root = os.path.join(args.out_root, base.exp_name)

    def spec(column: str, folder: str, seed: int, **updates: Any) -> RunSpec:
        cfg = config_lib.apply_overrides(base, seed=seed, **updates)
        return RunSpec(column, cfg, os.path.join(root, folder, f"seed{seed}"))

    table1 = [spec(p, p, s, prior=p) for p in priors for s in seeds]
    table2 = [spec(f"d_t = {d}", f"ladder_dt{d}", s, prior="ladder", representation_size=d)
              for d in d_ts for s in seeds]
    return table1, table2


# -- runs --------------------------------------------------------------------------------
def final_row(run_dir: str) -> dict[str, Any] | None:
    """The last metrics row of a run, or None when it has none."""
    rows = read_jsonl(os.path.join(run_dir, "metrics.jsonl"), require=("epoch",))
    return rows[-1] if rows else None


def is_finished(spec: RunSpec) -> bool:
    """True when the run's metrics.jsonl already has its last epoch."""
    row = final_row(spec.run_dir)
    return row is not None and row["epoch"] >= spec.cfg.num_epochs


def config_differences(spec: RunSpec) -> str:
    """'key old -> new, ...' for the run directory's recorded config against the spec's."""
    old = recorded_config(spec.run_dir)
    return format_changes(config_changes(old, spec.cfg)) if old is not None else ""


def train_run(spec: RunSpec, data, show_progress: bool) -> None:
    """Train (or resume) one run in this process, then free its graphs."""
    import tf_keras as keras

    from ladder_tf.workflows.training import Trainer

    trainer = Trainer(spec.cfg, data, spec.run_dir, show_progress=show_progress)
    try:
        trainer.fit()
    finally:
        del trainer
        keras.backend.clear_session()
        gc.collect()


# -- the table ---------------------------------------------------------------------------
def _fmt(values: Sequence[float], within_std: float | None = None) -> str:
    """'mean ± std' over seeds (sample std); one seed: its own std if given, else the mean."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "-"
    mean = float(np.mean(values))
    if len(values) > 1:
        return f"{mean:.2f} ± {float(np.std(values, ddof=1)):.2f}"
    if within_std is not None:
        return f"{mean:.2f} ± {within_std:.2f}"
    return f"{mean:.2f}"


def read_eval(run_dir: str) -> dict[str, Any]:
    """<run_dir>/eval.json as a dict ({} when absent)."""
    path = os.path.join(run_dir, EVAL_FILE)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            values = json.load(fh)
    except json.JSONDecodeError as err:
        print(f"warning: ignoring {path}: not valid JSON ({err})", file=sys.stderr)
        return {}
    return values if isinstance(values, dict) else {}


def _eval_keys(evals: Sequence[dict[str, Any]]) -> list[str]:
    """Known evaluation keys first (in EVAL_ROWS order), then any other '<key>_mean'."""
    present = set()
    for ev in evals:
        for k, v in ev.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                present.add(k[:-5] if k.endswith("_mean") else k)
    known = [k for k in EVAL_ROWS if k in present]
    extra = sorted(k for k in present if k not in EVAL_ROWS
                   and any(f"{k}_mean" in ev for ev in evals))
    return known + extra


def results_table(columns: Sequence[str], runs: dict[str, list[RunSpec]]) -> str:
    """A markdown table: one column per entry of ``columns``, rows of metrics over finished seeds."""
    finished = {c: [s for s in runs[c] if is_finished(s)] for c in columns}
    finals = {c: [final_row(s.run_dir) for s in finished[c]] for c in columns}
    evals = {c: [read_eval(s.run_dir) for s in finished[c]] for c in columns}
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines.append("| seeds finished | " + " | ".join(f"{len(finished[c])}/{len(runs[c])}"
                                                   for c in columns) + " |")
    for key in _eval_keys([ev for c in columns for ev in evals[c]]):
        cells = []
        for c in columns:
            vals = [ev.get(f"{key}_mean", ev.get(key)) for ev in evals[c]]
            vals = [v for v in vals if v is not None]
            stds = [ev.get(f"{key}_std") for ev in evals[c] if ev.get(f"{key}_std") is not None]
            cells.append(_fmt(vals, stds[0] if len(vals) == 1 and stds else None))
        lines.append(f"| {EVAL_ROWS.get(key, key)} | " + " | ".join(cells) + " |")
    for label, value in ELBO_ROWS:
        cells = [_fmt([value(r) for r in finals[c]]) for c in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _group(specs: Sequence[RunSpec]) -> tuple[list[str], dict[str, list[RunSpec]]]:
    columns: list[str] = []
    groups: dict[str, list[RunSpec]] = {}
    for s in specs:
        if s.column not in groups:
            columns.append(s.column)
            groups[s.column] = []
        groups[s.column].append(s)
    return columns, groups


def results_markdown(dataset: str, table1: Sequence[RunSpec], table2: Sequence[RunSpec],
                     failures: dict[str, str] | None = None) -> str:
    """The whole results.md: Table 1 (priors) and/or Table 2 (LaDDer d_t sweep)."""
    out = [f"# Results: {dataset}", "",
           "Final-epoch metrics on the whole test split, per image, as mean ± standard deviation "
           "over seeds (sample std; a single seed shows its value, or the evaluation's own "
           "std where it reports one). The four terms add up to the -ELBO.", ""]
    for title, specs in (("Table 1: priors", table1), ("Table 2: LaDDer, prior latent dimension d_t",
                                                        table2)):
        if specs:
            columns, groups = _group(specs)
            out += [f"## {title}", "", results_table(columns, groups)]
    if failures:
        out += ["## Runs that did not finish", ""]
        out += [f"- `{d}`: {msg}" for d, msg in failures.items()] + [""]
    return "\n".join(out)


# -- main --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    try:
        table1, table2 = build_specs(args)
    except ConfigError as err:
        fail(str(err))
    quiet_tensorflow(args.verbose)
    specs = table1 + table2
    if not specs:
        fail("nothing to run: give --priors and/or --d-t")

    from ladder_tf.data import DataNotFoundError, load_dataset
    from ladder_tf.locks import RunLockedError
    from ladder_tf.workflows.training import TrainingDivergedError

    cfg0 = specs[0].cfg
    try:
        data = load_dataset(cfg0.exp_name, args.data_dir, allow_download=not args.no_download,
                            train_size=cfg0.train_size)
    except (DataNotFoundError, ValueError) as err:
        fail(str(err))
    failures: dict[str, str] = {}
    busy: dict[str, str] = {}  # run directories another worker is training: skipped here
    for i, spec in enumerate(specs, 1):
        head = f"[{i}/{len(specs)}] {spec.column}, seed {spec.seed}"
        try:
            diff = config_differences(spec)
            if diff:
                print(f"warning: {spec.run_dir}/config.json differs: {diff}", file=sys.stderr)
            if is_finished(spec):
                print(f"{head}: finished already, skipped ({spec.run_dir})")
                continue
            print(f"{head}: training into {spec.run_dir}", flush=True)
            train_run(spec, data, show_progress=not args.no_progress)
        except TrainingDivergedError as err:
            failures[spec.run_dir] = f"diverged: {err}"
            print(f"{head}: {failures[spec.run_dir]}", file=sys.stderr)
        except RunLockedError as err:
            busy[spec.run_dir] = f"skipped here: {err}"
            print(f"warning: {head}: {busy[spec.run_dir]}", file=sys.stderr)
        except ValueError as err:
            fail(f"{spec.run_dir}: {err}")
        except OSError as err:
            fail(f"{spec.run_dir}: {error_text(err)}")
        except KeyboardInterrupt:
            fail("interrupted; re-run the same command to resume", status=130)
    text = results_markdown(cfg0.exp_name, table1, table2, {**failures, **busy})
    path = os.path.join(args.out_root, cfg0.exp_name, "results.md")
    atomic_write_text(path, text)
    print(text)
    print(f"written to {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
