"""Reproduce the paper's comparison: train priors x seeds on one data set, evaluate, tabulate.

    ladder reproduce --dataset mnist_fashion --seeds 0,1 --evaluate classifier
    ladder reproduce --dataset mnist_fashion --priors ladder --d-t 2,4,8,16   # Table 2
    ladder reproduce --config original --seeds 0,1          # the authors' code's settings
    ladder reproduce --config quality --priors ladder       # beyond the paper: d_z 32, 100 epochs
    ladder reproduce --priors hierarchical --set-prior hierarchical:representation_size=2

Run by run: trains (or resumes) it unless finished, evaluates it with each --evaluate
network unless a current evaluation exists, and rewrites <out-root>/<dataset>/results.md
and results.json, so finished runs are in the tables while later ones train: Table 1 (priors)
and/or Table 2 (LaDDer's d_t), with FID and final test -ELBO rows, and per column every
setting that differs from the base config. A --config other than the default works in
<out-root>/<dataset>-<name>/ instead (ladder_tf.workflows.reproduce_config).
"""
# Workflow modules that import TensorFlow are imported inside main, after the arguments
# are checked, so --help and argument mistakes answer at once.
from __future__ import annotations

import argparse
import os
import sys
from typing import NamedTuple

from ladder_tf import config as config_lib
from ladder_tf.commands.train import load_or_fail, with_data_dir
from ladder_tf.commands.common import (add_data_flags, add_run_length_flags, error_text,
                                       fail, new_parser, quiet_tensorflow)
from ladder_tf.config import DATASETS, PRIOR_ALIASES, PRIOR_NAMES, Config, ConfigError
from ladder_tf.workflows.evaluate import FEATURES, EvaluationSettings
from ladder_tf.workflows import reproduce
from ladder_tf.workflows.reproduce import ALL_PRIORS, RunSpec
from ladder_tf.workflows.reproduce_config import (ConfigChoice, experiment_root, per_prior_settings,
                                                  resolve_config)


def build_parser() -> argparse.ArgumentParser:
    """The ``ladder reproduce`` arguments, grouped as --help shows them."""
    p = new_parser(__doc__.split("\n\nTrains what")[0])
    runs = p.add_argument_group("which runs")
    runs.add_argument("--dataset", default="mnist_fashion", choices=list(DATASETS),
                      help="data set; its config is the shipped <dataset> config")
    runs.add_argument("--priors", metavar="LIST", help="comma-separated priors (default: all five, "
                      "or none besides the sweep when --d-t is given): " + ",".join(ALL_PRIORS))
    runs.add_argument("--seeds", default="0", metavar="LIST", help="comma-separated seeds, e.g. 0,1,2")
    runs.add_argument("--d-t", metavar="LIST", help="LaDDer sweep over the prior latent dimension, "
                      "e.g. 2,4,8,16 (the supplementary's Table 2)")
    runs.add_argument("--config", metavar="NAME_OR_PATH", help="base settings: paper "
                      "(configs/<dataset>.json, the default), original (configs/original/<dataset>.json, "
                      "the authors' code's), quality (configs/quality/, beyond the paper: "
                      "mnist_fashion) or another folder of configs/, a shipped config's name "
                      "or a JSON file; any but the default works in <out-root>/<dataset>-<name>/")
    runs.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override any config key for every run (repeatable); a run "
                      "directory that holds a run of other settings is reported, not reused")
    runs.add_argument("--set-prior", action="append", default=[], metavar="PRIOR:KEY=VALUE",
                      help="override a config key for one prior's runs (repeatable), e.g. "
                      "hierarchical:representation_size=2; they go to <prior>-<key>=<value>/")
    add_run_length_flags(p)
    add_data_flags(p)
    ev = p.add_argument_group("evaluation")
    ev.add_argument("--evaluate", metavar="NETWORKS", help="evaluate every finished run with these "
                    "comma-separated FID networks: " + ", ".join(FEATURES) + " (see `ladder evaluate "
                    "--help`); default: no evaluation, the table shows the evaluations present")
    ev.add_argument("--num-samples", type=int, default=10000, help="images per FID set")
    ev.add_argument("--repeats", type=int, default=5, help="FID repeats, each with fresh samples")
    ev.add_argument("--reference-size", type=int, metavar="N", help="reference statistics from a fixed "
                    "random subset of N training images (default: the whole training split)")
    ev.add_argument("--fid-weights", metavar="PATH", help="converted FID Inception weights .npz")
    ev.add_argument("--inception-weights", metavar="PATH", help="Keras InceptionV3 weights .h5")
    out = p.add_argument_group("outputs")
    out.add_argument("--out-root", default="experiments", metavar="DIR",
                     help="root of the run directories; also the cache of FID classifiers and statistics")
    out.add_argument("--results", metavar="PATH", help="write PATH.md and PATH.json (default: "
                     "<out-root>/<dataset>/results)")
    out.add_argument("--tables-only", action="store_true",
                     help="train and evaluate nothing: write the tables of what exists (what is "
                     "missing is listed)")
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


def parse_names(text: str, flag: str, noun: str, allowed: tuple[str, ...],
                aliases: dict[str, str]) -> list[str]:
    """'normal,GMM' -> ['normal', 'gmm'] (``aliases`` mapped); ConfigError naming what is allowed."""
    names = [aliases.get(p.strip(), p.strip()) for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in allowed]
    if unknown or not names:
        raise ConfigError(f"{flag}: unknown {noun} {', '.join(unknown) or '(none given)'}; "
                          f"choose from {','.join(allowed)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{flag} lists a {noun} twice: {text!r}")
    return names


class Plan(NamedTuple):
    """What one ``ladder reproduce`` command does: its base config (``choice``, ``base``) and
    its runs (Table 1, the prior comparison; Table 2, the d_t sweep)."""

    choice: ConfigChoice
    base: Config
    table1: list[RunSpec]
    table2: list[RunSpec]


def plan(args: argparse.Namespace) -> Plan:
    """Every run to do and the settings they share. Raises ConfigError (no TensorFlow)."""
    seeds = parse_int_list(args.seeds, "--seeds", 0)
    d_ts = parse_int_list(args.d_t, "--d-t", 1) if args.d_t else []
    if args.priors is not None:
        priors = parse_names(args.priors, "--priors", "prior", PRIOR_NAMES, PRIOR_ALIASES)
    else:
        priors = [] if d_ts else list(ALL_PRIORS)
    choice = resolve_config(args.config, args.dataset)
    base = config_lib.load(choice.path, args.set, exp_name=args.dataset, num_epochs=args.epochs,
                           steps_per_epoch=args.steps_per_epoch, train_size=args.train_size)
    per_prior = per_prior_settings(args.set_prior, priors + (["ladder"] if d_ts else []))
    table1, table2 = reproduce.build_specs(base, priors, seeds, d_ts, args.out_root, per_prior, choice.label)
    if not table1 + table2:
        raise ConfigError("nothing to run: give --priors and/or --d-t")
    base = with_data_dir(base, args.data_dir, [s.run_dir for s in table1 + table2])  # else as recorded
    table1, table2 = reproduce.build_specs(base, priors, seeds, d_ts, args.out_root, per_prior, choice.label)
    return Plan(choice, base, table1, table2)


def build_specs(args: argparse.Namespace) -> tuple[list[RunSpec], list[RunSpec]]:
    """Every run to do: (the prior comparison, the d_t sweep). Raises ConfigError."""
    p = plan(args)
    return p.table1, p.table2


def results_path(args: argparse.Namespace, p: Plan) -> str:
    """Where the tables go: PATH of PATH.md and PATH.json (``--results``, else the run root's)."""
    return args.results or os.path.join(experiment_root(args.out_root, p.base.exp_name, p.choice.label),
                                        "results")


def evaluation_networks(args: argparse.Namespace) -> list[str]:
    """The --evaluate networks, checked with the evaluation flags. Raises ConfigError."""
    from ladder_tf.workflows.evaluate import EvaluationError, check_network_fits

    if not args.evaluate:
        return []
    networks = parse_names(args.evaluate, "--evaluate", "FID network", FEATURES, {})
    try:
        for network in networks:
            check_network_fits(network, args.dataset)
    except EvaluationError as err:
        raise ConfigError(str(err)) from None
    for flag, value, low in (("--num-samples", args.num_samples, 2), ("--repeats", args.repeats, 1),
                             ("--reference-size", args.reference_size, 2)):
        if value is not None and value < low:
            raise ConfigError(f"{flag} must be at least {low}, got {value}")
    return networks


def evaluation_settings(args: argparse.Namespace, networks: list[str]) -> dict[str, EvaluationSettings]:
    """Per network its settings, weights found (fails before any training)."""
    from ladder_tf.workflows.evaluate import EvaluationError, resolve_features

    out = {}
    for network in networks:
        settings = EvaluationSettings(
            features=network, fid_weights=args.fid_weights, inception_weights=args.inception_weights,
            num_samples=args.num_samples, repeats=args.repeats, reference_size=args.reference_size,
            cache_dir=args.out_root,
            data_dir=args.data_dir, allow_download=not args.no_download, progress=not args.no_progress)
        if not args.tables_only:  # the weights must exist before anything trains
            try:
                resolve_features(settings)
            except EvaluationError as err:
                fail(str(err))
        out[network] = settings
    return out


def load_data(args: argparse.Namespace, cfg):
    """The training data of ``cfg`` (CelebA reads its crop and test size from it); fails
    (exit 2) when it cannot be found."""
    return load_or_fail(cfg, args.data_dir, allow_download=not args.no_download, train_size=cfg.train_size)


def say(text: str) -> None:
    print(text, flush=True)


def warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:  # every argument is checked before TensorFlow starts
        p = plan(args)
        networks = evaluation_networks(args)
    except ConfigError as err:
        fail(str(err))
    quiet_tensorflow(args.verbose)
    settings = evaluation_settings(args, networks)

    from ladder_tf.workflows import results
    from ladder_tf.workflows.run_log import package_versions

    command = "ladder reproduce " + " ".join(argv if argv is not None else sys.argv[1:])
    specs, exp_name = p.table1 + p.table2, p.base.exp_name
    outcome = reproduce.Outcome()
    out_path = results_path(args, p)

    def write(outcome: reproduce.Outcome) -> tuple[dict, tuple[str, str]]:
        record = results.results(exp_name, p.table1, p.table2, {**outcome.failures, **outcome.busy},
                                 package_versions(), command, base=p.base, config=p.choice)
        return record, results.write_results(record, out_path)

    try:
        if not args.tables_only:
            outcome = reproduce.train_and_evaluate(
                specs, lambda: load_data(args, specs[0].cfg), not args.no_progress, list(settings),
                settings.get, command, say, warn, after_run=write)
        record, (json_path, md_path) = write(outcome)
    except ValueError as err:
        fail(str(err))
    except OSError as err:
        fail(error_text(err))
    except KeyboardInterrupt:
        fail("interrupted; re-run the same command to resume", status=130)
    print(results.results_markdown(record))
    print(f"written to {md_path} and {json_path}")
    return 1 if outcome.failures else 0
