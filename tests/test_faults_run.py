"""Faults of a run directory, second round (issue 26): state that stays true after a kill or a
failed write. Fixtures and helpers: tests/test_faults.py."""
import json
import os
import signal
import socket

import numpy as np
import pytest

import train_mnist
from ladder_tf import locks
from ladder_tf.config import ConfigError, from_dict
from ladder_tf.io_utils import read_jsonl, write_jsonl
from ladder_tf.workflows import export, training
from ladder_tf.workflows.train import train
from test_faults import DATA, TINY, ckpt, dead_pid, finished, fit, one_error_line, run, snapshot  # noqa: F401


def cli_args(run_dir, tmp_path, *extra):
    np.savez(tmp_path / "mnist.npz", x_train=DATA.x_train, y_train=DATA.y_train, x_test=DATA.x_test,
             y_test=DATA.y_test)
    return (["--dataset", "mnist_fashion", "--data-dir", str(tmp_path / "mnist.npz"), "--out-dir", run_dir,
             "--no-progress", "--no-export"] + [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
            + list(extra))


def exported_checkpoint(saved_model):
    with open(os.path.join(saved_model, "assets", "export_info.json")) as fh:
        return os.path.basename(json.load(fh)["checkpoint"])


def last_session(run_dir):
    return json.load(open(os.path.join(run_dir, "run_record.json")))["sessions"][-1]


def epochs(run_dir):
    return [r["epoch"] for r in read_jsonl(os.path.join(run_dir, "metrics.jsonl"))]


def test_killed_export_is_redone_and_its_litter_removed(run):
    export.export_checkpoint(run, checkpoint=ckpt(run, "ckpt-3"))  # what a killed export leaves
    litter = os.path.join(run, f".tmp-saved_model-{dead_pid()}@{socket.gethostname()}-abc")
    os.makedirs(os.path.join(litter, "assets"))
    saved_model = os.path.join(run, "saved_model")
    assert exported_checkpoint(saved_model) == "ckpt-3"
    train(from_dict(TINY), DATA, run, show_progress=False)  # nothing to train, but the export is old
    assert exported_checkpoint(saved_model) == "ckpt-6" and not os.path.exists(litter)
    pb = os.stat(os.path.join(saved_model, "saved_model.pb"))
    train(from_dict(TINY), DATA, run, show_progress=False)  # current: not exported again
    assert os.stat(os.path.join(saved_model, "saved_model.pb")).st_mtime_ns == pb.st_mtime_ns


def test_missing_config_json_with_checkpoints_is_a_changed_config(run):
    os.remove(os.path.join(run, "config.json"))
    before = snapshot(run)
    with pytest.raises(ConfigError, match=r"has checkpoints but no config.json, so the config they were "
                                          r"trained with cannot be compared .*--allow-config-change"):
        fit(run, seed=5, learning_rate_ae=0.01)
    assert snapshot(run) == before
    fit(run, seed=5, learning_rate_ae=0.01, allow=True)
    log = read_jsonl(os.path.join(run, "config_changes.jsonl"))
    assert log[-1]["changes"] == {"config.json": {"old": "missing",
                                                  "new": "replaced by this invocation's config"}}
    assert json.load(open(os.path.join(run, "config.json")))["seed"] == 5


@pytest.mark.parametrize("error, reason", [("PermissionDeniedError", "Permission denied"),
                                           ("ResourceExhaustedError", "No space left on device")])
def test_unwritable_checkpoint_folder_is_one_line_and_no_row_without_its_checkpoint(
        run, tmp_path, capsys, monkeypatch, error, reason):
    import tensorflow as tf

    def failing_save(manager, checkpoint_number=None, **_):  # what TensorFlow raises for the folder
        raise getattr(tf.errors, error)(None, None, f"{manager.directory}/ckpt-12_temp/part-00000; {reason}")

    args = cli_args(run, tmp_path, "--epochs", "2", "--set", "checkpoint_every_steps=100")
    with monkeypatch.context() as patch:
        patch.setattr(tf.train.CheckpointManager, "save", failing_save)
        with pytest.raises(SystemExit) as exc:
            train_mnist.main(args)
    line = one_error_line(capsys, exc)
    assert line == f"error: {run}/checkpoints: {reason}; the checkpoint of step 12 was not written"
    assert epochs(run) == [1] and last_session(run)["status"] == "failed"
    assert not os.path.exists(os.path.join(run, locks.LOCK_NAME))
    assert train_mnist.main(args) == 0 and epochs(run) == [1, 2]


def test_unwritable_metrics_file_is_named_and_its_row_kept(run, tmp_path, capsys, monkeypatch):
    replace = os.replace

    def read_only_metrics(src, dst, **kw):  # what a read-only metrics.jsonl does (as non-root)
        if str(dst).endswith("metrics.jsonl"):
            raise PermissionError(13, "Permission denied", src, None, dst)
        return replace(src, dst, **kw)

    args = cli_args(run, tmp_path, "--epochs", "2")
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", read_only_metrics)
        with pytest.raises(SystemExit) as exc:
            train_mnist.main(args)
    assert one_error_line(capsys, exc) == f"error: {run}/metrics.jsonl: Permission denied"
    assert epochs(run) == [1] and os.path.exists(ckpt(run, "ckpt-12.index"))  # checkpointed first
    with pytest.warns(UserWarning, match="added the row of epoch 2, whose checkpoint was written"):
        assert train_mnist.main(args) == 0
    assert epochs(run) == [1, 2] and not os.path.exists(os.path.join(run, "metrics.pending.json"))


class ForeignSigterm(Exception):
    """What this test's own SIGTERM handler raises (code that does not handle SIGTERM meets it)."""


def test_sigterm_is_handled_like_ctrl_c(run, tmp_path, capsys, monkeypatch):
    batches = training.epoch_batches

    def sigterm_during_the_second_batch(*a):
        for i, x in enumerate(batches(*a)):
            if i == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            yield x

    def foreign(signum, frame):
        raise ForeignSigterm()

    previous = signal.signal(signal.SIGTERM, foreign)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(training, "epoch_batches", sigterm_during_the_second_batch)
            with pytest.raises(SystemExit) as exc:
                train_mnist.main(cli_args(run, tmp_path, "--epochs", "2"))
        assert signal.getsignal(signal.SIGTERM) is foreign  # restored after training
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exc.value.code == 143
    err = capsys.readouterr().err
    assert "error: stopped by SIGTERM; the last checkpoint holds step 8; re-run the same command" in err
    assert last_session(run)["status"] == "interrupted" and epochs(run) == [1]
    assert not os.path.exists(os.path.join(run, locks.LOCK_NAME))
    assert os.path.exists(ckpt(run, "ckpt-8.index"))  # the step after the signal was kept
    trainer, rows = fit(run, num_epochs=2)
    assert "resuming from step 8" in capsys.readouterr().out and [r["epoch"] for r in rows] == [1, 2]


def test_non_finite_metrics_are_written_as_null(tmp_path):
    path = tmp_path / "metrics.jsonl"
    write_jsonl(path, [{"epoch": 1, "refit_seconds": float("nan"), "x": [float("inf"), 1.5]}])

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    rows = [json.loads(line, parse_constant=refuse) for line in open(path)]
    assert rows == [{"epoch": 1, "refit_seconds": None, "x": [None, 1.5]}]
