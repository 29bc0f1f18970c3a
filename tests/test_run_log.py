"""What a run reports: one console line per epoch, TensorBoard's train/test overlay and
HParams, and the run record (command line, versions, commit, times)."""
import contextlib
import io
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from ladder_tf.workflows import run_log, training
from ladder_tf.config import from_dict
from synthetic import synthetic_data

TINY = {"prior": "normal", "code_size": 4, "num_hidden_units": 64, "batch_size": 16,
        "num_epochs": 2, "test_batch_size": 20}


def events(folder):
    """{tag: {plugin name: [steps]}} of every event file in ``folder`` (not its subfolders)."""
    out = {}
    for name in os.listdir(folder):
        if name.startswith("events.out"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
                for value in event.summary.value:
                    plugin = value.metadata.plugin_data.plugin_name
                    out.setdefault(value.tag, {}).setdefault(plugin, []).append(event.step)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-epoch run without a progress bar; its directory and what it printed."""
    run_dir = tmp_path_factory.mktemp("runlog") / "run"
    argv = sys.argv
    sys.argv = ["ladder train", "--prior", "normal", "--note", "a b"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            training.Trainer(from_dict(TINY), synthetic_data(), str(run_dir), show_progress=False).fit()
    finally:
        sys.argv = argv
    return run_dir, out.getvalue()


def test_one_console_line_per_epoch_without_a_progress_bar(run):
    _, printed = run
    lines = [line for line in printed.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"], printed
    for line in lines:
        for part in ("train -ELBO ", "test -ELBO ", "sigma "):
            assert part in line, line
        assert line.endswith(" s") and "components" not in line  # the normal prior has none


def test_console_line_names_active_components():
    row = {"epoch": 3, "train_elbo": 712.314, "test_elbo": 715.3, "sigma": 0.07123,
           "fast_fit_active_components": 8.0, "accurate_fit_active_components": 31.0,
           "epoch_seconds": 46.04}
    assert run_log.console_line(row, 50) == ("epoch 3/50  train -ELBO -712.31  test -ELBO -715.30  "
                                             "sigma 0.0712  components fast 8, accurate 31  46.0 s")


def test_tensorboard_overlays_train_and_test_and_has_hparams(run):
    board = run[0] / "tensorboard"
    train, test, top = events(board / "train"), events(board / "test"), events(board)
    for tag in ("elbo", "reconstruction", "cross_entropy"):
        assert train[tag]["scalars"] == [1, 2] and test[tag]["scalars"] == [1, 2], tag
    assert "train_elbo" not in top and "test_elbo" not in top
    assert top["sigma"]["scalars"] == [1, 2]
    assert top["samples"]["images"] == [1, 2] and top["reconstructions"]["images"] == [1, 2]
    assert "hparams" in top["_hparams_/session_start_info"]


def test_run_record(run):
    record = json.loads((run[0] / "run_record.json").read_text())
    [session] = record["sessions"]
    assert session["command"] == "ladder train --prior normal --note 'a b'"
    assert session["status"] == "finished" and session["first_epoch"] == 1
    assert session["last_epoch"] == 2
    assert session["started"] <= session["ended"] and session["ended"].endswith("+00:00")
    assert session["versions"]["tensorflow"] == tf.__version__
    assert session["versions"]["numpy"] == np.__version__
    git = session["git"]
    assert git is None or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))


def test_each_invocation_adds_a_session(tmp_path):
    log = run_log.RunLog(str(tmp_path), from_dict(TINY))
    log.start(1)
    log.finish("finished", 1)
    log.start(2)  # a resumed run
    log.finish("failed", 1)
    sessions = json.loads((tmp_path / "run_record.json").read_text())["sessions"]
    assert [(s["first_epoch"], s["status"], s["last_epoch"]) for s in sessions] == [
        (1, "finished", 1), (2, "failed", 1)]


def test_an_interrupted_fit_is_recorded_as_such(tmp_path, monkeypatch):
    trainer = training.Trainer(from_dict(TINY), synthetic_data(), str(tmp_path), show_progress=False)

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    [session] = json.loads((tmp_path / "run_record.json").read_text())["sessions"]
    assert session["status"] == "interrupted" and session["last_epoch"] == 0


def test_git_state_outside_a_checkout(tmp_path):
    assert run_log.git_state(str(tmp_path)) is None
