"""Resuming into an existing run directory without silently changing or losing anything.

- The new config is compared with the recorded ``config.json`` before anything is written:
  only ``SAFE_ON_RESUME`` keys may differ, unless the caller allows every change
  (``--allow-config-change``); each accepted change is appended to ``config_changes.jsonl``.
- ``metrics.jsonl`` rows of epochs after the restored checkpoint (they will be trained
  again) are moved to ``metrics.superseded.jsonl``, never deleted.
- An epoch's metrics row is written only after its checkpoint; until then it waits in
  ``metrics.pending.json``, so a process that ends between the two loses no row (the next
  resume appends it) and a failed checkpoint leaves no row behind it.
"""
from __future__ import annotations

import datetime
import json
import os
import warnings
from typing import Any

from ladder_tf import config as config_lib
from ladder_tf.config import SAFE_ON_RESUME, Config, ConfigError
from ladder_tf.io_utils import atomic_write_text, json_safe, read_jsonl, write_jsonl

CONFIG_FILE = "config.json"
CHANGES_FILE = "config_changes.jsonl"
METRICS_FILE = "metrics.jsonl"
SUPERSEDED_FILE = "metrics.superseded.jsonl"
STAGED_FILE = "metrics.pending.json"
ALLOW_FLAG = "--allow-config-change"

Changes = dict[str, tuple[Any, Any]]


def recorded_config(run_dir: str) -> Config | None:
    """The config recorded in ``run_dir`` (None for a new run directory)."""
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy keys were warned about when it was written
            return config_lib.load(path)
    except ConfigError as err:
        raise ConfigError(f"the recorded {path} cannot be read back ({err}); repair it or "
                          "train into a new directory") from None


def config_changes(old: Config, new: Config) -> Changes:
    """{key: (old value, new value)} for every key that differs."""
    a, b = old.to_dict(), new.to_dict()
    return {k: (a[k], b[k]) for k in sorted(b) if a.get(k) != b[k]}


def unsafe_changes(old: Config, new: Config) -> Changes:
    """The changes of ``new`` against ``old`` that a resume may not make (keys outside
    SAFE_ON_RESUME)."""
    return {k: v for k, v in config_changes(old, new).items() if k not in SAFE_ON_RESUME}


def format_changes(changes: Changes) -> str:
    """'code_size 16 -> 8, prior 'ladder' -> 'normal''."""
    return ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items())


def check_config(run_dir: str, cfg: Config, allow_all: bool = False) -> Changes:
    """The changes of ``cfg`` against ``run_dir``'s recorded config, if they are allowed.

    Raises ConfigError (one line: each changed key with its old and new value) when a key
    outside SAFE_ON_RESUME changed and ``allow_all`` is False.
    """
    old = recorded_config(run_dir)
    if old is None:
        return _unrecorded_config(run_dir, allow_all)
    changes = config_changes(old, cfg)
    unsafe = unsafe_changes(old, cfg)
    if unsafe and not allow_all:
        raise ConfigError(f"{run_dir} holds a run with another config: {format_changes(unsafe)}; "
                          f"only {', '.join(SAFE_ON_RESUME)} may change on resume. Train into "
                          f"another --out-dir, or pass {ALLOW_FLAG} to resume with the new "
                          f"values (recorded in {CHANGES_FILE})")
    return changes


def _unrecorded_config(run_dir: str, allow_all: bool) -> Changes:
    """The changes to record for a run directory without ``config.json``: none for a new run;
    for one with checkpoints the config they were trained with is unknown, which counts as a
    changed config (refused unless ``allow_all``)."""
    from ladder_tf.workflows.checkpoints import on_disk  # imports TensorFlow

    if not on_disk(os.path.join(run_dir, "checkpoints")):
        return {}
    copy = os.path.join(run_dir, "saved_model", "assets", CONFIG_FILE)
    hint = f" (the export's copy, perhaps older, is {copy})" if os.path.isfile(copy) else ""
    if not allow_all:
        raise ConfigError(f"{run_dir} has checkpoints but no {CONFIG_FILE}, so the config they were "
                          f"trained with cannot be compared with this one; restore {CONFIG_FILE}{hint}, "
                          f"train into another --out-dir, or pass {ALLOW_FLAG} to resume with this "
                          f"config (recorded in {CHANGES_FILE})")
    return {CONFIG_FILE: ("missing", "replaced by this invocation's config")}


def record_config(out_dir: str, cfg: Config, changes: Changes, step: int) -> None:
    """Write ``config.json`` and append the accepted ``changes`` (if any) to the change log."""
    if changes:
        path = os.path.join(out_dir, CHANGES_FILE)
        entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "step": step, "changes": {k: {"old": o, "new": n} for k, (o, n) in changes.items()}}
        write_jsonl(path, read_jsonl(path) + [entry])
    config_lib.save(cfg, os.path.join(out_dir, CONFIG_FILE))


def check_position(step: int, epochs_done: int, steps_per_epoch: int) -> None:
    """Raise ConfigError when a restored step cannot lie in the epoch after ``epochs_done``."""
    if not 0 <= step - epochs_done * steps_per_epoch <= steps_per_epoch:
        raise ConfigError(f"the checkpoint's step {step} after {epochs_done} epochs does not fit "
                          f"{steps_per_epoch} steps per epoch; steps_per_epoch, train_size or "
                          "batch_size differ from the run's")


def supersede_metrics(out_dir: str, epochs_done: int) -> None:
    """Move metrics rows of epochs after ``epochs_done`` to the superseded file (one warning)."""
    path = os.path.join(out_dir, METRICS_FILE)
    rows = read_jsonl(path, require=("epoch",))
    later = [r for r in rows if r["epoch"] > epochs_done]
    if not later:
        return
    old_path = os.path.join(out_dir, SUPERSEDED_FILE)
    write_jsonl(old_path, read_jsonl(old_path) + later)
    write_jsonl(path, [r for r in rows if r["epoch"] <= epochs_done])
    warnings.warn(f"{path}: {len(later)} row(s) of epochs after the restored epoch {epochs_done} "
                  f"will be trained again; moved to {SUPERSEDED_FILE}", stacklevel=2)


def stage_row(out_dir: str, row: dict[str, Any]) -> None:
    """Keep an epoch's metrics ``row`` in ``metrics.pending.json`` until its checkpoint exists."""
    atomic_write_text(os.path.join(out_dir, STAGED_FILE), json.dumps(json_safe(row), sort_keys=True) + "\n")


def clear_staged_row(out_dir: str) -> None:
    """The staged row is in ``metrics.jsonl`` now: remove its file."""
    path = os.path.join(out_dir, STAGED_FILE)
    if os.path.exists(path):
        os.remove(path)


def recover_staged_row(out_dir: str, epochs_done: int) -> None:
    """Append the staged row when it belongs to the restored epoch ``epochs_done`` and
    ``metrics.jsonl`` lacks it (the process ended after the checkpoint, before the row);
    a staged row of an epoch that was not checkpointed is dropped."""
    path = os.path.join(out_dir, STAGED_FILE)
    if not os.path.exists(path):
        return
    try:
        with open(path, encoding="utf-8") as fh:
            row = json.load(fh)
    except (OSError, ValueError):
        row = None
    metrics = os.path.join(out_dir, METRICS_FILE)
    rows = read_jsonl(metrics, require=("epoch",))
    if isinstance(row, dict) and row.get("epoch") == epochs_done and epochs_done not in [r["epoch"] for r in rows]:
        write_jsonl(metrics, rows + [row])
        warnings.warn(f"{metrics}: added the row of epoch {epochs_done}, whose checkpoint was written "
                      f"but not its row (kept in {STAGED_FILE})", stacklevel=2)
    clear_staged_row(out_dir)


__all__ = ["stage_row", "clear_staged_row", "recover_staged_row", "SAFE_ON_RESUME", "ALLOW_FLAG", "check_config", "record_config", "check_position",
           "supersede_metrics", "config_changes", "unsafe_changes", "format_changes",
           "recorded_config"]
