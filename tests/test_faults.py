"""Faults of a run directory (issue 17): each test damages a finished tiny run as a crash,
a user or a second process would, and checks that nothing finished is lost and that the
user gets one clear line. Inputs checked before they are trusted: tests/test_faults_input.py.
"""
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from ladder_tf.commands import export as export_cmd
from ladder_tf.workflows import checkpoints, export, training
from ladder_tf import locks
from ladder_tf.config import ConfigError, from_dict
from ladder_tf.io_utils import read_jsonl
from ladder_tf.workflows.runs import RunNotFoundError, load_run
from synthetic import synthetic_data

TINY = {"prior": "normal", "code_size": 4, "num_hidden_units": 64, "batch_size": 16,
        "num_epochs": 1, "test_batch_size": 20, "checkpoint_every_steps": 3}
DATA = synthetic_data()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished epoch of 6 steps: checkpoints ckpt-3 and ckpt-6, one metrics row."""
    run_dir = str(tmp_path_factory.mktemp("faults") / "run")
    training.Trainer(from_dict(TINY), DATA, run_dir, show_progress=False).fit()
    return run_dir


@pytest.fixture
def run(finished, tmp_path):
    """A private copy of the finished run to damage."""
    return shutil.copytree(finished, str(tmp_path / "run"))


def fit(run_dir, **changes):
    cfg = from_dict({**TINY, **{k: v for k, v in changes.items() if k != "allow"}})
    trainer = training.Trainer(cfg, DATA, run_dir, show_progress=False,
                               allow_config_change=changes.get("allow", False))
    return trainer, trainer.fit()


def ckpt(run_dir, name=""):
    return os.path.join(run_dir, "checkpoints", name)


def tf_state(run_dir):
    import tensorflow as tf

    return tf.train.get_checkpoint_state(ckpt(run_dir)).all_model_checkpoint_paths


def write_lock(path, **record):
    with open(path, "w") as fh:
        json.dump(record, fh)


def truncate(path):
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)


def snapshot(run_dir):
    """{relative path: bytes} of every file of a run directory."""
    out = {}
    for root, _, files in os.walk(run_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                out[os.path.relpath(os.path.join(root, f), run_dir)] = fh.read()
    return out


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def one_error_line(capsys, excinfo):
    assert excinfo.value.code == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1
    return lines[0]


# -- checkpoints ------------------------------------------------------------------------
def test_missing_newest_index_resumes_from_the_older_checkpoint(run, capsys):
    row = read_jsonl(os.path.join(run, "metrics.jsonl"))[0]
    os.remove(ckpt(run, "ckpt-6.index"))
    with pytest.warns(UserWarning, match=r"skipped unreadable checkpoint ckpt-6 \(its .index file is missing\)"):
        trainer, rows = fit(run)
    assert "resuming from step 3" in capsys.readouterr().out
    assert int(trainer.step) == 6 and [r["epoch"] for r in rows] == [1]
    assert read_jsonl(os.path.join(run, "metrics.superseded.jsonl")) == [row]  # moved, not deleted
    assert os.path.exists(ckpt(run, "ckpt-3.index")) and os.path.exists(ckpt(run, "ckpt-6.index"))


def test_missing_state_file_keeps_metrics_and_every_checkpoint(run):
    os.remove(ckpt(run, "checkpoint"))
    before = snapshot(run)
    trainer, _ = fit(run)
    assert int(trainer.step) == 6  # resumed from ckpt-6: nothing to train
    after = snapshot(run)
    changed = {k for k in after if k not in before or after[k] != before[k]}
    logs = ("tensorboard", "run_record.json")  # every invocation adds to these
    assert {k for k in changed if not k.startswith(logs)} == {"checkpoints/checkpoint"}
    assert set(before) <= set(after)
    assert [os.path.basename(p) for p in tf_state(run)] == ["ckpt-3", "ckpt-6"]  # repaired


def test_truncated_newest_data_falls_back_in_training_and_loading(run):
    truncate(ckpt(run, "ckpt-6.data-00000-of-00001"))
    with pytest.warns(UserWarning, match="skipped unreadable checkpoint ckpt-6 .*using ckpt-3"):
        assert load_run(run).checkpoint.endswith("ckpt-3")
    with pytest.warns(UserWarning, match="ckpt-6"):
        trainer, _ = fit(run)
    assert int(trainer.step) == 6 and checkpoints.unreadable_reason(ckpt(run, "ckpt-6")) is None


def test_no_readable_checkpoint_is_one_error_and_nothing_changes(run, capsys):
    import evaluate

    truncate(ckpt(run, "ckpt-3.data-00000-of-00001"))
    os.remove(ckpt(run, "ckpt-6.data-00000-of-00001"))  # a missing .data file
    before = snapshot(run)
    with pytest.raises(checkpoints.CheckpointError, match="no readable checkpoint.*ckpt-6 .*; ckpt-3 "):
        fit(run)
    with pytest.raises(RunNotFoundError, match="no readable checkpoint"):
        load_run(run)
    assert snapshot(run) == before
    with pytest.raises(SystemExit) as exc:
        evaluate.main([run, "--features", "classifier", "--no-download"])
    assert "no readable checkpoint" in one_error_line(capsys, exc)
    with pytest.raises(SystemExit) as exc:
        export_cmd.main([run])
    assert "ckpt-3" in one_error_line(capsys, exc)
    with pytest.raises(SystemExit) as exc:
        export_cmd.main([run, "--checkpoint", ckpt(run, "ckpt-99")])
    assert "ckpt-99 cannot be used" in one_error_line(capsys, exc)
    assert snapshot(run) == before


# -- config on resume ---------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"code_size": 8}, "code_size 4 -> 8"),
    ({"prior": "gmm"}, "prior 'normal' -> 'gmm'"),
    ({"steps_per_epoch": 2}, "steps_per_epoch 0 -> 2"),
])
def test_changed_config_is_refused_before_anything_is_written(run, change, message):
    before = snapshot(run)
    with pytest.raises(ConfigError, match=message) as err:
        fit(run, **change)
    assert "--allow-config-change" in str(err.value) and "\n" not in str(err.value)
    assert snapshot(run) == before


def test_safe_and_allowed_changes_are_recorded(run):
    fit(run, checkpoint_every_steps=5)  # a safe key: no flag needed
    with pytest.raises(checkpoints.CheckpointError, match="does not fit"):
        fit(run, code_size=8, allow=True)  # allowed, but the weights cannot take it
    assert json.load(open(os.path.join(run, "config.json")))["code_size"] == 4
    fit(run, checkpoint_every_steps=5, steps_per_epoch=5, allow=True)
    log = read_jsonl(os.path.join(run, "config_changes.jsonl"))
    assert [e["changes"] for e in log] == [{"checkpoint_every_steps": {"old": 3, "new": 5}},
                                           {"steps_per_epoch": {"old": 0, "new": 5}}]
    assert json.load(open(os.path.join(run, "config.json")))["steps_per_epoch"] == 5


def test_cli_refuses_a_changed_config_in_one_line(run, tmp_path, capsys):
    import train_mnist

    np.savez(tmp_path / "mnist.npz", x_train=DATA.x_train, y_train=DATA.y_train,
             x_test=DATA.x_test, y_test=DATA.y_test)
    args = ["--dataset", "mnist_fashion", "--data-dir", str(tmp_path / "mnist.npz"), "--out-dir", run,
            "--no-progress", "--no-export"] + [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    with pytest.raises(SystemExit) as exc:
        train_mnist.main(args + ["--set", "code_size=8"])
    assert "code_size 4 -> 8" in one_error_line(capsys, exc)


# -- locks --------------------------------------------------------------------------------
def test_second_training_into_a_run_directory_is_refused(run):
    trainer = training.Trainer(from_dict({**TINY, "num_epochs": 2}), DATA, run, show_progress=False)
    step, seen = trainer.train_step, []

    def step_then_intrude(*args):
        if not seen:
            with pytest.raises(locks.RunLockedError) as err:
                fit(run, num_epochs=2)
            seen.append(str(err.value))
        return step(*args)

    trainer.train_step = step_then_intrude
    rows = trainer.fit()
    assert f"pid {os.getpid()} on {socket.gethostname()}" in seen[0] and "training" in seen[0]
    assert [r["epoch"] for r in rows] == [1, 2]  # not 1, 1, 2, 2
    assert not os.path.exists(os.path.join(run, locks.LOCK_NAME))  # released


def test_stale_lock_is_taken_over_and_foreign_host_is_refused(run, tmp_path):
    lock = os.path.join(run, locks.LOCK_NAME)
    record = {"pid": dead_pid(), "host": socket.gethostname(), "purpose": "training", "started": "x"}
    write_lock(lock, **record)
    with pytest.warns(UserWarning, match=f"taking over the lock of training \\(pid {record['pid']}"):
        fit(run)
    assert not os.path.exists(lock)
    write_lock(lock, **{**record, "host": "elsewhere"})
    with pytest.raises(locks.RunLockedError, match="on elsewhere"):
        fit(run)
    write_lock(lock, **{**record, "pid": os.getpid(), "process_start": "another boot:1"})
    with pytest.warns(UserWarning, match="taking over"):  # a reused pid: its writer is gone
        fit(run)
    assert not os.path.exists(lock)

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        with locks.run_lock(run, "test"):
            raise Crash()
    assert not os.path.exists(lock)  # released on exceptions too


def test_evaluation_outputs_and_reproduce_workers_respect_locks(finished, tmp_path, capsys):
    import evaluate
    from ladder_tf.commands import reproduce

    held = {"pid": os.getppid(), "host": socket.gethostname(), "purpose": "evaluation",
            "started": "x"}
    out = str(tmp_path / "report")
    write_lock(out + ".lock", **held)
    with pytest.raises(SystemExit) as exc:
        evaluate.main([finished, "--features", "classifier", "--out", out])
    assert f"pid {os.getppid()}" in one_error_line(capsys, exc)
    run_dir = tmp_path / "root" / "mnist_fashion" / "normal" / "seed0"
    run_dir.mkdir(parents=True)
    write_lock(run_dir / locks.LOCK_NAME, **{**held, "purpose": "training"})
    npz = tmp_path / "fashion-mnist.npz"
    np.savez(npz, x_train=DATA.x_train, y_train=DATA.y_train, x_test=DATA.x_test, y_test=DATA.y_test)
    assert reproduce.main(["--priors", "normal", "--out-root", str(tmp_path / "root"),
                           "--data-dir", str(npz), "--no-progress", "--epochs", "1",
                           "--set", "batch_size=16", "--set", "num_hidden_units=64"]) == 0
    assert "skipped here" in capsys.readouterr().err and os.listdir(run_dir) == [locks.LOCK_NAME]


# -- metrics and export litter ----------------------------------------------------------------
def test_damaged_metrics_line_costs_only_itself(run):
    path = os.path.join(run, "metrics.jsonl")
    row = read_jsonl(path)[0]
    with open(path, "w") as fh:
        fh.write(json.dumps({**row, "epoch": 0}) + "\n{torn line\n" + json.dumps(row) + "\n")
    with pytest.warns(UserWarning, match="skipped damaged line 2; kept the other 2"):
        _, rows = fit(run)
    assert [r["epoch"] for r in rows] == [0, 1]


def test_next_export_removes_litter_of_killed_exports(finished, tmp_path):
    parent = tmp_path / "export"
    host = socket.gethostname()
    litter = [f".tmp-saved_model-{dead_pid()}@{host}-abc", ".old-saved_model-x1y2",  # older naming
              f".tmp-export-assets-{dead_pid()}@{host}-q_1"]
    alive = f".tmp-saved_model-{os.getppid()}@{host}-live"  # a concurrent export: kept
    for name in litter + [alive]:
        (parent / name / "assets").mkdir(parents=True)
    export.export_checkpoint(finished, str(parent / "saved_model"))
    assert sorted(os.listdir(parent)) == [alive, "saved_model"]
