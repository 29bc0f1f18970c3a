"""The README's shell commands, checked without running them: every `ladder` (or entry-point
script) command parses with its real parser, every `make` target exists, and every run
directory or SavedModel a command reads was written by a command before it, at the path
that command actually writes. (`make quickstart` and tests/test_packaging.py run the
commands themselves.)"""
import os
import re
import shlex
import subprocess
import shutil

import pytest

from ladder_tf import commands
from ladder_tf.commands import evaluate, export, fid_weights, interpolate, reproduce, sample
from ladder_tf.commands import train as train_cmd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = {"train_mnist.py": "train", "train_celeba.py": "train-celeba", "evaluate.py": "evaluate",
           "reproduce.py": "reproduce"}
PARSERS = {
    "train": train_cmd.mnist_parser, "train-celeba": train_cmd.celeba_parser,
    "evaluate": evaluate.parser, "reproduce": reproduce.build_parser, "export": export.build_parser,
    "interpolate": interpolate.parser, "sample": sample.parser, "fid-weights": fid_weights.parser,
}


def readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        return fh.read()


def shell_commands() -> list[list[str]]:
    """Each command of the README's ```bash blocks, in order, continuation lines joined."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", readme(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                out.append(words)
    return out


def ladder_argv(words: list[str]) -> tuple[str, list[str]] | None:
    """(command, arguments) for `ladder ...`, `.venv/bin/ladder ...` and `python script.py ...`."""
    if os.path.basename(words[0]) == "ladder" and len(words) > 1 and not words[1].startswith("-"):
        return words[1], words[2:]
    if words[0] == "python" and len(words) > 1 and words[1] in SCRIPTS:
        return SCRIPTS[words[1]], words[2:]
    return None


def make_targets() -> set[str]:
    with open(os.path.join(ROOT, "Makefile")) as fh:
        return set(re.findall(r"^([\w-]+):", fh.read(), re.M))


def quickstart_command() -> list[str]:
    """What `make quickstart` runs, from make's dry run."""
    proc = subprocess.run(["make", "-n", "quickstart"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    lines = [shlex.split(line) for line in proc.stdout.replace("\\\n", " ").splitlines()
             if "bin/ladder train" in line]
    assert len(lines) == 1, proc.stdout + proc.stderr
    return lines[0]


def written_by(name: str, args, produced: list[str]) -> list[str]:
    """The run directories and SavedModels that command ``name`` writes."""
    if name in ("train", "train-celeba"):
        cfg = train_cmd.config_from_args(args, "celeba" if name == "train-celeba" else "mnist_fashion")
        run = args.out_dir or train_cmd.default_run_dir(cfg)
        return [run] + ([] if args.no_export else [os.path.join(run, "saved_model")])
    if name == "reproduce":
        table1, table2 = reproduce.build_specs(args)
        return [s.run_dir for s in table1 + table2]
    if name == "export":
        if args.model_version is None:
            return [args.out or os.path.join(args.run_dir, "saved_model")]
        taken = [p for p in produced if os.path.dirname(p) == args.out.rstrip("/")]
        return [os.path.join(args.out, str(len(taken) + 1))]
    return []


def read_by(name: str, args) -> list[str]:
    return {"evaluate": lambda: args.runs, "export": lambda: [args.run_dir],
            "interpolate": lambda: [args.model]}.get(name, lambda: [])()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_readme_commands_parse_and_read_only_what_earlier_ones_wrote():
    produced: list[str] = []
    checked = set()
    for words in shell_commands():
        if words[0] == "make":
            assert set(words[1:]) <= make_targets(), words
            if "quickstart" in words:
                words = quickstart_command()
            else:
                continue
        if words[0] == "saved_model_cli":
            model = words[words.index("--dir") + 1]
            assert model in produced, f"{' '.join(words)}: nothing above writes {model}"
            continue
        parsed = ladder_argv(words)
        if parsed is None:
            continue
        name, argv = parsed
        args = PARSERS[name]().parse_args(argv)  # exits (fails the test) on a wrong flag
        for path in read_by(name, args):
            assert path.rstrip("/") in produced, f"{' '.join(words)}: nothing above writes {path}"
        produced += [p.rstrip("/") for p in written_by(name, args, produced)]
        checked.add(name)
    assert checked >= {"train", "evaluate", "reproduce", "export", "interpolate"}, checked


def test_readme_python_snippets_load_what_commands_wrote():
    loads = re.findall(r'tf\.saved_model\.load\("([^"]+)"\)', readme())
    assert loads and all(p.startswith("experiments/quickstart/ladder/") for p in loads), loads


def test_readme_names_every_command_and_no_private_module_paths():
    text = readme()
    for name in commands.COMMANDS:
        assert f"`ladder {name}`" in text, name
    assert "python -m ladder_tf." not in text  # the commands, not module paths
