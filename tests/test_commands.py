"""The `ladder` command family: dispatch, --help texts, one-line errors, quiet TensorFlow start-up."""
import os
import subprocess
import sys

import pytest

from ladder_tf.commands import common as cli
from ladder_tf import commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILY = ("train", "train-celeba", "evaluate", "reproduce", "export", "interpolate", "sample",
          "data", "fid", "fid-stats", "fid-weights")


def help_text(name, capsys):
    with pytest.raises(SystemExit) as exc:
        commands.main([name, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_overview_lists_the_whole_family(capsys):
    assert tuple(commands.COMMANDS) == FAMILY
    assert commands.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in FAMILY:
        assert f"\n  {name} " in out, name
    assert commands.main([]) == 2  # no command: the overview on stderr, status 2
    assert "commands:" in capsys.readouterr().err


@pytest.mark.parametrize("name", FAMILY)
def test_every_help_reads_well(name, capsys):
    out = help_text(name, capsys)
    assert out.startswith(f"usage: ladder {name} ")
    assert "(default: None)" not in out and "(default: False)" not in out
    assert "--verbose" in out


def test_training_help_is_grouped(capsys):
    out = help_text("train", capsys)
    for group in ("model and config:", "run length:", "data:", "outputs:"):
        assert f"\n{group}\n" in out, group
    assert "(default: 0)" not in out  # flags without defaults show none
    celeba = help_text("train-celeba", capsys)
    assert "\ndevices:\n" in celeba and "--cache-dir DIR" in celeba


@pytest.mark.parametrize("name", ["train", "train-celeba", "evaluate", "reproduce", "interpolate", "sample"])
def test_one_data_dir_flag_for_every_command(name, capsys):
    """Every command that reads a data set has the same --data-dir, naming every kind of data set."""
    out = " ".join(help_text(name, capsys).split())
    assert " ".join(cli.DATA_DIR_HELP.split()) in out and "--no-download" in out
    if name in ("evaluate", "interpolate", "sample"):  # they read trained runs: the recorded source
        assert "recorded in the run's config.json" in out


def test_unknown_and_missing_commands_fail_with_one_line(capsys, monkeypatch):
    with pytest.raises(SystemExit) as exc:
        commands.main(["trian"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown command 'trian'")
    monkeypatch.setitem(commands.COMMANDS, "sample",
                        commands.Command("ladder_tf.no_such_module:main", "missing"))
    with pytest.raises(SystemExit) as exc:
        commands.main(["sample", "run"])
    assert exc.value.code == 2
    assert "ladder_tf.no_such_module is missing" in capsys.readouterr().err


def test_dispatch_passes_arguments_and_names_the_command(monkeypatch):
    seen = {}

    def fake_main(argv):
        seen.update(argv=argv, prog=sys.argv[0])
        return 3

    monkeypatch.setattr("ladder_tf.commands.train.main_mnist", fake_main)
    assert commands.main(["train", "--epochs", "1"]) == 3
    assert seen == {"argv": ["--epochs", "1"], "prog": "ladder train"}


def test_thin_entry_points_run_the_same_code():
    import evaluate
    import reproduce
    import train_celeba
    import train_mnist

    from ladder_tf.commands import reproduce as reproduce_lib
    from ladder_tf.commands import evaluate as evaluate_cmd
    from ladder_tf.commands import train

    assert train_mnist.main is train.main_mnist and train_celeba.main is train.main_celeba
    assert evaluate.main is evaluate_cmd.main and reproduce.main is reproduce_lib.main


def test_shipped_config_names_resolve(tmp_path, monkeypatch):
    assert cli.config_path("mnist_digit_2d") == os.path.join(cli.CONFIG_DIR, "mnist_digit_2d.json")
    assert cli.config_path("celeba.json") == os.path.join(cli.CONFIG_DIR, "celeba.json")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.json").write_text("{}")
    assert cli.config_path("mine.json") == "mine.json"  # a file beats a shipped name
    assert cli.config_path("nonexistent") == "nonexistent"  # config.load names it in its error


def test_verbose_shows_tensorflow_startup_lines():
    """--verbose imports TensorFlow untouched (the hidden case: tests/test_packaging.py's
    installed `ladder train`, whose stderr must have none of these lines)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = ROOT
    code = ("from ladder_tf.commands.common import quiet_tensorflow; quiet_tensorflow(verbose=True); "
            "import tensorflow as tf; print(float(tf.reduce_sum(tf.ones(3))))")
    loud = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert loud.returncode == 0 and loud.stdout.strip() == "3.0", loud.stderr
    # TensorFlow's x86-64 Linux build always announces oneDNN (and probes for CUDA)
    assert [line for line in loud.stderr.splitlines() if cli.TF_STARTUP_LINE.match(line)], loud.stderr


def test_hidden_startup_lines_passes_other_output_on(capfd):
    with cli.hidden_startup_lines():
        os.write(2, b"I0000 00:00:1795721940.708527    5103 port.cc:153] oneDNN custom operations\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written\n")
        os.write(2, b"a real problem\n")
    assert capfd.readouterr().err == "a real problem\n"
