"""The package as a newcomer gets it: `pip install .` into a fresh environment, plain `pytest`,
make's Python floor, pins inside the declared ranges, shipped configs, licence and citation."""
import os
import re
import shutil
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from packaging.requirements import Requirement

from ladder_tf.commands import common as cli
from ladder_tf.io_utils import read_jsonl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = ("pyproject.toml", "README.md", "LICENSE", "configs", "ladder_tf")  # what a build reads
SHIPPED_CONFIGS = {"mnist_digit.json", "mnist_fashion.json", "mnist_digit_2d.json", "celeba.json",
                   "folder.json"}
ORIGINAL_CONFIGS = {"mnist_digit.json", "mnist_fashion.json", "celeba.json"}  # configs/original/
CONFIG_SETS = {"original": ORIGINAL_CONFIGS, "quality": {"mnist_fashion.json"}}  # configs/<set>/


def pyproject() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        return tomllib.load(fh)


def site_packages() -> str:
    """The site-packages folders this Python imports from, as a PYTHONPATH (for ``python -S``,
    which reads no .pth file and so no installed or editable ladder_tf)."""
    return os.pathsep.join(p for p in sys.path if os.path.basename(p) == "site-packages")


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    return {**env, **extra}


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_runs_ladder_from_elsewhere(tmp_path):
    """`pip install --no-deps .` into a new virtual environment that sees the installed
    dependencies (a .pth line) but not this checkout; then `ladder` from another folder."""
    source, venv, elsewhere = tmp_path / "source", tmp_path / "venv", tmp_path / "elsewhere"
    source.mkdir()
    for name in SOURCE:  # pip builds in the source tree: a copy keeps the checkout clean
        copy = shutil.copytree if os.path.isdir(os.path.join(ROOT, name)) else shutil.copy
        copy(os.path.join(ROOT, name), source / name)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python, ladder = str(venv / "bin" / "python"), str(venv / "bin" / "ladder")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(purelib, "installed_dependencies.pth"), "w") as fh:
        fh.write(site_packages().replace(os.pathsep, "\n") + "\n")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                              "--no-build-isolation", str(source)], capture_output=True, text=True,
                             env=clean_env(), timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    elsewhere.mkdir()
    where = subprocess.run([python, "-c", "import ladder_tf, ladder_tf.commands.common as c; "
                            "print(ladder_tf.__file__); print(c.CONFIG_DIR)"],
                           cwd=elsewhere, capture_output=True, text=True, env=clean_env(), check=True)
    module, config_dir = where.stdout.split()
    assert module.startswith(purelib) and config_dir.startswith(purelib), where.stdout
    assert set(os.listdir(config_dir)) >= SHIPPED_CONFIGS
    for name, files in CONFIG_SETS.items():  # config sets ship
        assert set(os.listdir(os.path.join(config_dir, name))) == files, name
    helped = subprocess.run([ladder, "train", "--help"], cwd=elsewhere, capture_output=True,
                            text=True, env=clean_env(), timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: ladder train"), helped.stderr
    version = subprocess.run([python, "-m", "ladder_tf", "--version"], cwd=elsewhere, capture_output=True,
                             text=True, env=clean_env(), timeout=60)
    assert version.stdout.startswith("ladder_tf "), version.stderr

    from synthetic import synthetic_data  # imports TensorFlow: not at module level (see below)

    d = synthetic_data(n_train=64, n_test=20)
    np.savez(elsewhere / "tiny.npz", x_train=d.x_train, y_train=d.y_train, x_test=d.x_test, y_test=d.y_test)
    cmd = [ladder, "train", "--prior", "normal", "--epochs", "1", "--steps-per-epoch", "1",
           "--data-dir", "tiny.npz", "--no-download", "--no-progress", "--no-export", "--out-dir", "run",
           "--set", "batch_size=16", "--set", "num_hidden_units=64", "--set", "code_size=2",
           "--set", "test_batch_size=10"]
    trained = subprocess.run(cmd, cwd=elsewhere, capture_output=True, text=True, env=clean_env(),
                             timeout=300)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert [r["epoch"] for r in read_jsonl(elsewhere / "run" / "metrics.jsonl")] == [1]
    assert "epoch 1/1  train -ELBO" in trained.stdout
    noise = [line for line in trained.stderr.splitlines() if cli.TF_STARTUP_LINE.match(line)]
    assert noise == [] and "oneDNN" not in trained.stderr, trained.stderr  # hidden by default


def test_plain_pytest_from_the_repository_root():
    """`pytest` (no working directory on sys.path) imports this checkout by pytest.ini alone:
    run with site processing off, so no installed or editable ladder_tf can stand in."""
    code = ("import sys; sys.path.remove(''); import pytest; sys.exit(pytest.main(['-q', '-p', "
            "'no:cacheprovider', 'tests/test_packaging.py::test_checkout_is_what_tests_import']))")
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=clean_env(PYTHONPATH=site_packages()), timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout


def test_checkout_is_what_tests_import():
    import ladder_tf

    assert os.path.dirname(os.path.abspath(ladder_tf.__file__)) == os.path.join(ROOT, "ladder_tf")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_stops_on_an_old_python_with_one_line(tmp_path):
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", "pyproject.toml"):
        shutil.copy(os.path.join(ROOT, name), tmp_path)
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.10.12" && exit 0\nexit 1\n')
    old.chmod(0o755)
    proc = subprocess.run(["make", "-s", "setup", f"PYTHON={old}"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == (f"error: ladder_tf needs Python 3.11 or newer, but {old} is Python 3.10.12; "
                        "use make clean, then make PYTHON=python3.11 (or newer)"), proc.stderr
    assert not (tmp_path / ".venv").exists()  # stopped before creating anything
    ok = subprocess.run(["make", "-s", "check-python", f"PYTHON={sys.executable}"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr


def test_python_floor_agrees_everywhere():
    assert pyproject()["project"]["requires-python"] == ">=3.11"
    with open(os.path.join(ROOT, "Makefile")) as fh:
        assert re.search(r"^MIN_PYTHON := 3\.11$", fh.read(), re.M)
    with open(os.path.join(ROOT, "README.md")) as fh:
        assert "Python 3.11 or newer" in fh.read()


def test_pins_lie_inside_the_declared_ranges():
    declared = {Requirement(r).name.lower(): Requirement(r) for r in pyproject()["project"]["dependencies"]}
    with open(os.path.join(ROOT, "requirements.txt")) as fh:
        pins = [Requirement(line) for line in fh.read().split("\n") if line.strip() and not line.startswith("#")]
    pinned = {p.name.lower(): next(iter(p.specifier)).version for p in pins}
    assert set(declared) <= set(pinned), set(declared) - set(pinned)
    for name, req in declared.items():
        assert req.specifier.contains(pinned[name]), (name, str(req.specifier), pinned[name])
    extras = pyproject()["project"]["optional-dependencies"]
    assert [Requirement(r).extras for r in extras["gpu"]] == [{"and-cuda"}]


def tool_data() -> dict:
    return pyproject()["tool"]["setuptools"]["package-data"]


def test_every_subpackage_and_the_configs_ship():
    tool = pyproject()["tool"]["setuptools"]
    found = {os.path.relpath(d, ROOT).replace(os.sep, ".") for d, _, files in os.walk(os.path.join(ROOT, "ladder_tf"))
             if "__init__.py" in files}
    assert found | {"ladder_tf.configs"} == set(tool["packages"])
    assert tool["package-dir"] == {"ladder_tf.configs": "configs"}
    assert set(os.listdir(os.path.join(ROOT, "configs"))) == SHIPPED_CONFIGS | set(CONFIG_SETS)
    for name, files in CONFIG_SETS.items():
        assert set(os.listdir(os.path.join(ROOT, "configs", name))) == files, name
    assert set(os.listdir(cli.CONFIG_DIR)) >= SHIPPED_CONFIGS
    assert tool_data()["ladder_tf.configs"] == ["*.json", "*/*.json"]
    assert pyproject()["project"]["scripts"] == {"ladder": "ladder_tf.commands:main"}


def test_licence_and_citation():
    with open(os.path.join(ROOT, "LICENSE")) as fh:
        licence = fh.read()
    assert licence.startswith("MIT License") and "ladder_tf contributors" in licence
    with open(os.path.join(ROOT, "CITATION.cff")) as fh:
        cff = fh.read()
    for part in ("cff-version: 1.2.0", "preferred-citation:", "LaDDer: Latent Data Distribution "
                 "Modelling with a Generative Prior", "family-names: Lin", "family-names: Clark",
                 "year: 2020", "arXiv:2009.00088"):
        assert part in cff, part
    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    citing = readme[readme.index("## Citing"):]
    assert "CITATION.cff" in citing and "eprint    = {2009.00088}" in citing
