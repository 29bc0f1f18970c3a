"""`ladder reproduce --config` and `--set-prior`: which settings each run gets, where it goes,
what the results header says; and that every argument is checked before TensorFlow starts."""
import json
import os
import subprocess
import sys

import pytest

from ladder_tf.commands import reproduce
from ladder_tf.config import CONFIG_DIR
from ladder_tf.workflows.reproduce import ALL_PRIORS
from test_reproduce import specs_for, table_rows
from test_reproduce import test_bad_arguments_exit_2_with_one_message as exits_2_with_one_message

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shipped(*parts):
    with open(os.path.join(CONFIG_DIR, *parts)) as fh:
        return json.load(fh)


def dirs(specs):
    """{'<folder>/seed<k>'} of the runs."""
    return {os.path.join(*s.run_dir.split(os.sep)[-2:]) for s in specs}


def test_default_layout_is_unchanged(tmp_path):
    default, _ = specs_for(tmp_path)
    for argv in (["--config", "paper"], ["--config", "mnist_fashion"],
                 ["--config", os.path.join(CONFIG_DIR, "mnist_fashion.json")]):
        same, _ = specs_for(tmp_path, *argv)
        assert [(s.run_dir, s.cfg) for s in same] == [(s.run_dir, s.cfg) for s in default]
    assert [s.run_dir for s in default] == [os.path.join(str(tmp_path), "mnist_fashion", p, "seed0")
                                            for p in ALL_PRIORS]
    paper = shipped("mnist_fashion.json")
    assert all(s.cfg.representation_size == paper["representation_size"] == 16 for s in default)


def test_original_config_has_its_own_root(tmp_path):
    paper, _ = specs_for(tmp_path, "--seeds", "0,1")
    original, _ = specs_for(tmp_path, "--seeds", "0,1", "--config", "original")
    by_path, _ = specs_for(tmp_path, "--seeds", "0,1", "--config",
                           os.path.join(CONFIG_DIR, "original", "mnist_fashion.json"))
    assert [s.run_dir for s in by_path] == [s.run_dir for s in original]
    assert not {s.run_dir for s in paper} & {s.run_dir for s in original}
    assert {os.path.dirname(os.path.dirname(s.run_dir)) for s in original} == {
        os.path.join(str(tmp_path), "mnist_fashion-original")}
    authors = shipped("original", "mnist_fashion.json")
    for s in original:  # the file's values, read here without the package
        assert (s.cfg.learning_rate_ae, s.cfg.num_epochs, s.cfg.representation_size, s.cfg.mnist_network) == (
            authors["learning_rate_ae"], authors["num_epochs"], authors["representation_size"],
            authors["mnist_network"])
    digits, _ = specs_for(tmp_path, "--dataset", "mnist_digit", "--config", "mnist_digit_2d", "--priors", "gmm")
    assert digits[0].run_dir == os.path.join(str(tmp_path), "mnist_digit-mnist_digit_2d", "gmm", "seed0")
    assert digits[0].cfg.code_size == shipped("mnist_digit_2d.json")["code_size"]
    mine = tmp_path / "my settings.json"
    mine.write_text(json.dumps({"exp_name": "mnist_fashion", "code_size": 5}))
    own, _ = specs_for(tmp_path, "--config", str(mine), "--priors", "normal")
    assert own[0].run_dir == os.path.join(str(tmp_path), "mnist_fashion-my_settings", "normal", "seed0")
    assert own[0].cfg.code_size == 5


def test_set_prior_changes_one_prior_and_its_folder(tmp_path):
    t1, t2 = specs_for(tmp_path, "--set-prior", "hierarchical:representation_size=2",
                       "--set-prior", "ours:n_mixtures=16", "--set-prior", "gmm:n_mixtures=50", "--d-t", "2,16",
                       "--priors", "gmm,hierarchical,ladder")
    by = {s.column: s for s in t1}
    assert (by["hierarchical"].cfg.representation_size, by["ladder"].cfg.representation_size) == (2, 16)
    assert by["ladder"].cfg.n_mixtures == 16 and by["hierarchical"].cfg.n_mixtures == 50
    assert dirs(t1) == {"gmm/seed0", "hierarchical-representation_size=2/seed0", "ladder-n_mixtures=16/seed0"}
    # the sweep is LaDDer's: it gets LaDDer's keys; d_t = 16 is the Table 1 run itself
    assert [(s.cfg.representation_size, s.cfg.n_mixtures) for s in t2] == [(2, 16), (16, 16)]
    assert dirs(t2) == {"ladder_dt2-n_mixtures=16/seed0", "ladder-n_mixtures=16/seed0"}
    base = {k: v for k, v in by["gmm"].cfg.to_dict().items() if k not in ("prior", "n_mixtures")}
    changed = {k for k, v in by["hierarchical"].cfg.to_dict().items() if k in base and base[k] != v}
    assert changed == {"representation_size"}  # nothing else moved


@pytest.mark.parametrize("argv, message", [
    (["--config", "nowhere"], "--config nowhere: no such file and no shipped config"),
    (["--config", os.path.join(CONFIG_DIR, "mnist_digit.json")], "is a config for mnist_digit"),
    (["--set-prior", "flow:n_mixtures=3"], "unknown prior 'flow'"),
    (["--set-prior", "ladder"], "--set-prior expects PRIOR:KEY=VALUE"),
    (["--set-prior", "ladder:seed=3"], "--set-prior cannot set seed"),
    (["--set-prior", "ladder:n_mixturs=3"], "did you mean 'n_mixtures'"),
    (["--set-prior", "ladder:representation_size=0"], "ladder runs (--set-prior): config key 'representation_size'"),
    (["--set-prior", "ladder:n_mixtures=3", "--set-prior", "ours:n_mixtures=4"], "sets ladder:n_mixtures twice"),
    (["--priors", "normal", "--set-prior", "ladder:n_mixtures=3"], "ladder is not among the priors run (normal)"),
])
def test_bad_settings_exit_2_with_one_message(argv, message, capsys, tmp_path):
    exits_2_with_one_message(argv, message, capsys, tmp_path)  # and writes nothing


def test_results_header_names_the_config_and_each_columns_settings(tmp_path, capsys):
    root = str(tmp_path)
    argv = ["--out-root", root, "--config", "original", "--set-prior", "hierarchical:representation_size=16",
            "--set-prior", "gmm:n_mixtures=10", "--d-t", "4", "--priors", ",".join(ALL_PRIORS), "--tables-only"]
    assert reproduce.main(argv) == 0
    assert sorted(os.listdir(root)) == ["mnist_fashion-original"]  # results beside its runs only
    record = json.load(open(os.path.join(root, "mnist_fashion-original", "results.json")))
    text = open(os.path.join(root, "mnist_fashion-original", "results.md")).read()
    assert record["config"] == {"name": "original", "path": os.path.join("configs", "original", "mnist_fashion.json")}
    assert "Base config: original (`configs/original/mnist_fashion.json`)" in text
    d_t = shipped("original", "mnist_fashion.json")["representation_size"]
    settings = record["tables"]["table1"]["settings"]
    assert {c: (v["d_t"], v["differs"]) for c, v in settings.items()} == {
        "normal": (None, {}), "vampprior": (None, {}), "gmm": (None, {"n_mixtures": 10}),
        "hierarchical": (16, {"representation_size": 16}), "ladder": (d_t, {})}
    assert record["tables"]["table2"]["settings"] == {
        "d_t = 4": {"prior": "ladder", "d_t": 4, "differs": {"representation_size": 4}}}
    rows = table_rows(text, "## Table 1: priors")
    assert rows[""] == list(ALL_PRIORS)
    assert rows["d_t (representation_size)"] == ["-", "-", "-", "16", str(d_t)]
    assert rows["set otherwise than the base config"] == ["-", "-", "n_mixtures=10", "representation_size=16", "-"]
    assert table_rows(text, "## Table 2")["d_t (representation_size)"] == ["4"]
    capsys.readouterr()
    assert reproduce.main(["--out-root", root, "--priors", "normal", "--tables-only"]) == 0
    assert "Base config: paper (`configs/mnist_fashion.json`)" in open(
        os.path.join(root, "mnist_fashion", "results.md")).read()


CHECKER = """
import json, sys
from ladder_tf.commands import reproduce
seen = []
for argv in json.loads(sys.argv[1]):
    try:
        code = reproduce.main(argv)
    except SystemExit as exit:
        code = exit.code
    seen.append([code, "tensorflow" in sys.modules])
print(json.dumps(seen))
"""


def test_wrong_arguments_fail_before_tensorflow_starts(tmp_path):
    root = ["--out-root", str(tmp_path / "out")]
    wrong = [["--priors", "flow"], ["--seeds", "x"], ["--config", "nowhere"], ["--set", "n_mixturs=3"],
             ["--set-prior", "ladder:seed=1"], ["--evaluate", "fid"], ["--evaluate", "classifier", "--repeats", "0"],
             ["--dataset", "celeba", "--evaluate", "classifier"], ["--epochs", "0"]]
    runs = [root + argv for argv in wrong] + [root + ["--priors", "normal", "--tables-only"]]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", CHECKER, json.dumps(runs)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen[:-1] == [[2, False]] * len(wrong), proc.stderr[-2000:]
    assert seen[-1] == [0, True]  # the control: a run that goes on starts TensorFlow, and it is seen
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]) == len(wrong)


def test_any_folder_of_configs_is_a_config_set(tmp_path, monkeypatch):
    """configs/<set>/<dataset>.json: `--config <set>` and the file's path name the same set."""
    from ladder_tf.config import ConfigError
    from ladder_tf.workflows import reproduce_config

    configs = tmp_path / "configs"
    (configs / "quality").mkdir(parents=True)
    values = dict(shipped("mnist_fashion.json"), num_epochs=7)
    (configs / "quality" / "mnist_fashion.json").write_text(json.dumps(values))
    monkeypatch.setattr(reproduce_config, "CONFIG_DIR", str(configs))
    assert reproduce_config.config_sets() == ["quality"]
    by_name = reproduce_config.resolve_config("quality", "mnist_fashion")
    by_path = reproduce_config.resolve_config(str(configs / "quality" / "mnist_fashion.json"), "mnist_fashion")
    assert by_name == by_path == (os.path.join(str(configs), "quality", "mnist_fashion.json"), "quality")
    with pytest.raises(ConfigError, match="there is no .*quality.*mnist_digit.json"):
        reproduce_config.resolve_config("quality", "mnist_digit")
    with pytest.raises(ConfigError, match=r"quality \(configs/quality/<dataset>.json\)"):
        reproduce_config.resolve_config("nonexistent", "mnist_fashion")
