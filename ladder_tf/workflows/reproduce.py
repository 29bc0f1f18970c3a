"""The paper's comparison: train priors x seeds on one data set, evaluate them, tabulate.

Runs go to ``<out-root>/<exp_name>/<prior>/seed<k>/`` and the d_t sweep to
``ladder_dt<k>/seed<s>/``, except that a sweep entry whose config equals a LaDDer run of
the prior comparison (d_t = the config's ``representation_size``) shares that run. A base
config other than the default (``--config``) has its own root, and per-prior keys
(``--set-prior``) their own folders (ladder_tf.workflows.reproduce_config).
Training and evaluation are idempotent: a run whose metrics.jsonl has its last epoch is
skipped, an interrupted one resumed from its checkpoints; a run another process trains
(it holds the run's lock) is skipped with a note, so several workers can share one
comparison. An evaluation is skipped when the run already has one with the same FID
network and protocol made at its final checkpoint; an interrupted one resumes from the
cached FID statistics of the sets it finished. A run directory holding a run of other
settings (``--set`` changed since, or trained past ``--epochs``) is reported and left alone,
never trained on nor tabulated as the new settings' run.

The training loop and the evaluation (TensorFlow, the networks) are imported inside the
functions that use them, so the commands answer --help and argument mistakes at once.
"""
from __future__ import annotations

import functools
import gc
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ladder_tf import config as config_lib
from ladder_tf.config import Config, ConfigError
from ladder_tf.io_utils import read_jsonl
from ladder_tf.locks import RunLockedError
from ladder_tf.prior_registry import PRIOR_NAMES
from ladder_tf.workflows.reproduce_config import differences, experiment_root, folder_name
from ladder_tf.workflows.resume import config_changes, format_changes, recorded_config, unsafe_changes

ALL_PRIORS = PRIOR_NAMES  # Table 1's columns, in its order


@dataclass
class RunSpec:
    """One training run: its table column, effective config and directory."""

    column: str
    cfg: Config
    run_dir: str

    @property
    def seed(self) -> int:
        return self.cfg.seed


@dataclass
class Outcome:
    """What a pass over the runs left undone: run directory -> one-line reason."""

    failures: dict[str, str] = field(default_factory=dict)  # diverged or failed: needs a look
    busy: dict[str, str] = field(default_factory=dict)  # held by another worker: skipped here

    def merge(self, other: "Outcome") -> None:
        self.failures.update(other.failures)
        self.busy.update(other.busy)


def build_specs(base: Config, priors: Sequence[str], seeds: Sequence[int], d_ts: Sequence[int],
                out_root: str, per_prior: dict[str, dict[str, Any]] | None = None,
                label: str | None = None) -> tuple[list[RunSpec], list[RunSpec]]:
    """Every run: (Table 1, the prior comparison; Table 2, LaDDer's d_t sweep).

    ``per_prior``: {prior: {key: value}} set for that prior's runs only (the sweep's runs are
    LaDDer's, so they get LaDDer's, d_t excepted); ``label``: the base config's name, None
    for the default (ladder_tf.workflows.reproduce_config, which also names the folders).
    """
    root = experiment_root(out_root, base.exp_name, label)
    per_prior = per_prior or {}

    def spec(column: str, stem: str, seed: int, **updates: Any) -> RunSpec:
        own = per_prior.get(updates["prior"], {})
        try:
            cfg = config_lib.apply_overrides(base, seed=seed, **{**own, **updates})
        except ConfigError as err:
            raise ConfigError(f"{updates['prior']} runs (--set-prior): {err}" if own else str(err)) from None
        changed = differences(cfg, config_lib.apply_overrides(base, **updates))
        return RunSpec(column, cfg, os.path.join(root, folder_name(stem, changed), f"seed{seed}"))

    table1 = [spec(p, p, s, prior=p) for p in priors for s in seeds]
    table2 = [spec(f"d_t = {d}", f"ladder_dt{d}", s, prior="ladder", representation_size=d)
              for d in d_ts for s in seeds]
    same = {repr(s.cfg.to_dict()): s.run_dir for s in table1}
    for s in table2:  # the same training twice would only cost time: share the run
        s.run_dir = same.get(repr(s.cfg.to_dict()), s.run_dir)
    return table1, table2


def final_row(run_dir: str) -> dict[str, Any] | None:
    """The last metrics row of a run, or None when it has none."""
    rows = read_jsonl(os.path.join(run_dir, "metrics.jsonl"), require=("epoch",))
    return rows[-1] if rows else None


def is_finished(spec: RunSpec) -> bool:
    """True when the run's metrics.jsonl already has its last epoch and the run directory
    holds a run of the spec's settings (``other_settings``)."""
    row = final_row(spec.run_dir)
    return row is not None and row["epoch"] >= spec.cfg.num_epochs and not other_settings(spec)


def config_differences(spec: RunSpec) -> str:
    """'key old -> new, ...' for the run directory's recorded config against the spec's."""
    old = recorded_config(spec.run_dir)
    return format_changes(config_changes(old, spec.cfg)) if old is not None else ""


def other_settings(spec: RunSpec) -> str:
    """'' when ``spec.run_dir`` is new or holds a run of ``spec.cfg``'s settings; else what
    differs ('key old -> new, ...').

    Keys that may change on resume (``SAFE_ON_RESUME``: more epochs, the data's folder) do
    not count, but a run already trained past the spec's epochs does: its final checkpoint is
    not the one asked for. A ``--set`` that changes a finished run's settings would otherwise
    read its old run as the new one's; ``--set-prior`` gives such runs folders of their own.
    """
    try:
        old = recorded_config(spec.run_dir)
    except ConfigError as err:
        return str(err)
    if old is None:
        return ""
    changes = unsafe_changes(old, spec.cfg)
    row = final_row(spec.run_dir)
    if row is not None and row["epoch"] > spec.cfg.num_epochs:
        changes["epochs trained"] = (row["epoch"], spec.cfg.num_epochs)
    return format_changes(changes)


def unique_runs(specs: Sequence[RunSpec]) -> list[RunSpec]:
    """``specs`` without repeated run directories (a shared run is trained once)."""
    seen: dict[str, RunSpec] = {}
    for s in specs:
        seen.setdefault(s.run_dir, s)
    return list(seen.values())


def _free_graphs() -> None:
    import tf_keras as keras

    keras.backend.clear_session()
    gc.collect()


def train_run(spec: RunSpec, number: str, load_data: Callable[[], Any], progress: bool,
              say: Callable[[str], None], warn: Callable[[str], None]) -> Outcome:
    """Train (or resume) one run unless it is finished; ``load_data()`` gives the data set.

    Divergence and another worker's lock are recorded in the Outcome; other errors (bad
    config values, unwritable folders) propagate."""
    from ladder_tf.workflows.training import Trainer, TrainingDivergedError

    outcome, head = Outcome(), f"{number} {spec.column}, seed {spec.seed}"
    other = other_settings(spec)
    if other:
        outcome.failures[spec.run_dir] = (
            f"holds a run of other settings ({other}); left as it is, neither trained nor "
            "evaluated: give another --out-root, or --set-prior PRIOR:KEY=VALUE for a folder of its own")
        warn(f"{head}: {spec.run_dir} {outcome.failures[spec.run_dir]}")
        return outcome
    diff = config_differences(spec)
    if diff:
        warn(f"{spec.run_dir}/config.json differs: {diff}")
    if is_finished(spec):
        say(f"{head}: finished already, skipped ({spec.run_dir})")
        return outcome
    say(f"{head}: training into {spec.run_dir}")
    try:
        trainer = Trainer(spec.cfg, load_data(), spec.run_dir, show_progress=progress)
        try:
            trainer.fit()
        finally:
            del trainer
            _free_graphs()
    except TrainingDivergedError as err:
        outcome.failures[spec.run_dir] = f"diverged: {err}"
        warn(f"{head}: {outcome.failures[spec.run_dir]}")
    except RunLockedError as err:
        outcome.busy[spec.run_dir] = f"skipped here: {err}"
        warn(f"{head}: {outcome.busy[spec.run_dir]}")
    return outcome


def evaluate_run(spec: RunSpec, number: str, features: Sequence[str], settings_for, command: str,
                 say: Callable[[str], None], warn: Callable[[str], None]) -> Outcome:
    """Evaluate one finished run with every FID network in ``features`` unless a current
    evaluation with the same protocol exists. ``settings_for(network)`` gives the
    EvaluationSettings of one network (weights already resolved)."""
    from ladder_tf.workflows.evaluate import EvaluationError, evaluate_to_files, evaluation_is_current

    outcome = Outcome()
    for network in features:
        line = f"{number} {network} FID of {spec.column}, seed {spec.seed}"
        settings = settings_for(network)
        if evaluation_is_current(spec.run_dir, settings):
            say(f"{line}: evaluated already, skipped")
            continue
        say(f"{line}: evaluating {spec.run_dir}")
        try:
            evaluate_to_files([spec.run_dir], settings, os.path.join(spec.run_dir, f"evaluation-{network}"),
                              f"{command} (evaluating {spec.run_dir})")
        except RunLockedError as err:
            outcome.busy[f"{spec.run_dir} ({network})"] = f"skipped here: {err}"
            warn(f"{line}: skipped here: {err}")
        except EvaluationError as err:
            outcome.failures[f"{spec.run_dir} ({network})"] = str(err)
            warn(f"{line}: {err}")
        finally:
            _free_graphs()
    return outcome


def train_and_evaluate(specs: Sequence[RunSpec], load_data: Callable[[], Any], progress: bool,
                       features: Sequence[str], settings_for, command: str,
                       say: Callable[[str], None], warn: Callable[[str], None],
                       after_run: Callable[[Outcome], None] = lambda outcome: None) -> Outcome:
    """Each run in turn: train (or resume) it, then evaluate it with every FID network in
    ``features``, then ``after_run(outcome so far)`` (the command rewrites the results there,
    so finished runs are in the table while later ones train). ``load_data()`` is called
    once, when the first run needs training."""
    outcome, runs, data = Outcome(), unique_runs(specs), functools.cache(load_data)
    for i, spec in enumerate(runs, 1):
        number = f"[{i}/{len(runs)}]"
        outcome.merge(train_run(spec, number, data, progress, say, warn))
        if features and is_finished(spec):
            outcome.merge(evaluate_run(spec, number, features, settings_for, command, say, warn))
        after_run(outcome)
    return outcome
