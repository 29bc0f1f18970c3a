"""The commands of the documentation (README.md, then every docs/*.md page), checked without
running them.

Each page's ```bash blocks: every `ladder` (or entry-point script) command and every
`python tools/...` or `python benchmarks/...` command parses with its real parser, every
`make` target exists, every run directory, SavedModel, results file or figure a command
reads was written by a command before it (at the path that command actually writes) or is
a committed file, a run directory is never trained twice with different settings (the
second would be refused on resume), and MNIST digits are fetched (`ladder data
mnist_digit`, or a make target that runs `make data`) before a command needs them without
`--data-dir`. The commands quoted inline in the text (`python tools/...`, `python
benchmarks/...`) parse too.

What "before" means: the README's commands come first, in order, starting from a fresh
clone. Each docs page is then checked on its own, starting from what the README's commands
wrote, with its own commands in order; a page never relies on another docs page, so a user
can follow any one page after the README. (`make quickstart` and tests/test_packaging.py
run the commands themselves.)"""
import argparse
import functools
import glob
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from docs_pages import DOCS, PAGES, README, ROOT, read, without_fences
from ladder_tf.commands import data, evaluate, export, fid, fid_weights, interpolate, reproduce, sample
from ladder_tf.commands import train as train_cmd
from ladder_tf.config import SAFE_ON_RESUME

# The repository's scripts, run as `python tools/NAME.py ...`: each has parser().
SCRIPT_DIRS = ("tools", "benchmarks")
SCRIPTS = {"train_mnist.py": "train", "train_celeba.py": "train-celeba", "evaluate.py": "evaluate",
           "reproduce.py": "reproduce"}
PARSERS = {
    "train": train_cmd.mnist_parser, "train-celeba": train_cmd.celeba_parser,
    "evaluate": evaluate.parser, "reproduce": reproduce.build_parser, "export": export.build_parser,
    "interpolate": interpolate.parser, "sample": sample.parser, "fid-weights": fid_weights.parser,
    "data": data.parser, "fid": fid.fid_parser, "fid-stats": fid.stats_parser,
}


def shell_commands(text: str) -> list[list[str]]:
    """Each command of a page's ```bash blocks, in order, continuation lines joined."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                out.append(words)
    return out


def parse_or_fail(parser: argparse.ArgumentParser, argv: list[str], where: str) -> argparse.Namespace:
    """``argv`` parsed by ``parser``; an AssertionError naming ``where`` if it does not parse."""
    try:
        return parser.parse_args(argv)
    except SystemExit:  # argparse has printed why
        raise AssertionError(f"{where}: does not parse") from None


@functools.cache
def script_parser(script: str):
    """The parser() of the repository script at ``script`` (e.g. "tools/paper_table.py")."""
    saved = list(sys.path)
    sys.path.insert(0, os.path.join(ROOT, os.path.dirname(script)))  # as `python SCRIPT` has it
    try:
        spec = importlib.util.spec_from_file_location(f"_docs_{os.path.basename(script)[:-3]}",
                                                      os.path.join(ROOT, script))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module.parser


def script_name(words: list[str]) -> str | None:
    """"tools/NAME.py" for `python tools/NAME.py ...` (likewise benchmarks/), else None."""
    if len(words) > 1 and words[0] == "python" and os.path.dirname(words[1]) in SCRIPT_DIRS:
        assert os.path.exists(os.path.join(ROOT, words[1])), f"no script {words[1]}"
        return words[1]
    return None


def script_files(script: str, args) -> tuple[list[str], list[str]]:
    """(files read, files written) by a tools/ script; a benchmark reads and writes nothing kept."""
    name = os.path.basename(script)
    if name == "merge_results.py":
        return args.results, [args.out + ".json", args.out + ".md"]
    if name == "paper_table.py":
        return [args.results] + ([args.standard] if args.standard else []), []
    if name == "study_table.py":
        return [row.partition("=")[2].partition("#")[0] for row in args.rows], []
    if name == "readme_figures.py":
        return [args.copy] if args.copy else [r.partition("=")[2] for r in args.runs], [args.out]
    return [], []


def ladder_argv(words: list[str]) -> tuple[str, list[str]] | None:
    """(command, arguments) for `ladder ...`, `.venv/bin/ladder ...` and `python script.py ...`."""
    if os.path.basename(words[0]) == "ladder" and len(words) > 1 and not words[1].startswith("-"):
        return words[1], words[2:]
    if words[0] == "python" and len(words) > 1 and words[1] in SCRIPTS:
        return SCRIPTS[words[1]], words[2:]
    return None


def make_rules() -> dict[str, set[str]]:
    """Each Makefile target with its prerequisites."""
    with open(os.path.join(ROOT, "Makefile")) as fh:
        return {target: set(deps.split()) for target, deps in re.findall(r"^([\w-]+):([^=\n]*)$",
                                                                         fh.read(), re.M)}


def quickstart_command() -> list[str]:
    """What `make quickstart` runs, from make's dry run."""
    proc = subprocess.run(["make", "-n", "quickstart"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    lines = [shlex.split(line) for line in proc.stdout.replace("\\\n", " ").splitlines()
             if "bin/ladder train" in line]
    assert len(lines) == 1, proc.stdout + proc.stderr
    return lines[0]


def written_by(name: str, args, produced: list[str]) -> list[str]:
    """What command ``name`` writes: run directories, SavedModels, results files (PATH.json and
    PATH.md) and interpolation folders."""
    if name in ("train", "train-celeba"):
        run = train_run(name, args)[0]
        return [run] + ([] if args.no_export else [os.path.join(run, "saved_model")])
    if name == "reproduce":
        p = reproduce.plan(args)
        results = reproduce.results_path(args, p)
        return [s.run_dir for s in p.table1 + p.table2] + [results + ".json", results + ".md"]
    if name == "interpolate":
        return [args.out]
    if name == "export":
        if args.model_version is None:
            return [args.out or os.path.join(args.run_dir, "saved_model")]
        taken = [p for p in produced if os.path.dirname(p) == args.out.rstrip("/")]
        return [os.path.join(args.out, str(len(taken) + 1))]
    return []


def train_run(name: str, args) -> tuple[str, dict]:
    """A training command's run directory and the settings a resume must keep."""
    cfg = train_cmd.config_from_args(args, "celeba" if name == "train-celeba" else "mnist_fashion")
    settings = {k: v for k, v in cfg.to_dict().items() if k not in SAFE_ON_RESUME}
    return (args.out_dir or train_cmd.default_run_dir(cfg)).rstrip("/"), settings


def read_by(name: str, args) -> list[str]:
    return {"evaluate": lambda: args.runs, "export": lambda: [args.run_dir],
            "interpolate": lambda: [args.model], "sample": lambda: [args.run]}.get(name, lambda: [])()


def needs_digits(name: str, args) -> bool:
    """Whether the command reads MNIST digits from where `ladder data mnist_digit` puts them."""
    if name not in ("train", "reproduce") or args.data_dir:
        return False
    if name == "reproduce":
        return args.dataset == "mnist_digit"
    return train_cmd.config_from_args(args, "mnist_fashion").exp_name == "mnist_digit"


class Walk:
    """What the commands of the pages read so far have written (see the module docstring)."""

    def __init__(self, before: "Walk | None" = None):
        self.produced: list[str] = list(before.produced) if before else []
        self.settings: dict[str, dict] = dict(before.settings) if before else {}
        self.digits = before.digits if before else False
        self.checked: set[str] = set()

    def written(self, path: str) -> bool:
        """Whether a command above wrote ``path`` (or a folder holding it), or it is committed
        (experiments/ is never committed, so a local run there does not count)."""
        path = os.path.normpath(path)
        committed = not path.startswith("experiments" + os.sep) and os.path.exists(os.path.join(ROOT, path))
        return (committed
                or any(path == p or path.startswith(p + os.sep) for p in self.produced))

    def run_script(self, script: str, words: list[str], where: str) -> None:
        args = parse_or_fail(script_parser(script)(), words[2:], where)
        reads, writes = script_files(script, args)
        for path in reads:
            assert self.written(path), f"{where}: nothing above writes {path}"
        self.produced += [os.path.normpath(p) for p in writes]
        self.checked.add(script)

    def run(self, page: str, text: str | None = None) -> "Walk":
        """Check ``page``'s commands in order (its ``text``, else the file's)."""
        for words in shell_commands(read(page) if text is None else text):
            where = f"{page}: {' '.join(words)}"
            script = script_name(words)
            if script:
                self.run_script(script, words, where)
                continue
            if words[0] == "make":
                rules = make_rules()
                targets = [w for w in words[1:] if "=" not in w]
                assert set(targets) <= set(rules), where
                self.digits |= any(t == "data" or "data" in rules[t] for t in targets)
                if "quickstart" not in targets:
                    continue
                words = quickstart_command()
            if words[0] == "saved_model_cli":
                model = words[words.index("--dir") + 1]
                assert model in self.produced, f"{where}: nothing above writes {model}"
                continue
            parsed = ladder_argv(words)
            if parsed is None:
                continue
            name, argv = parsed
            args = parse_or_fail(PARSERS[name](), argv, where)
            for path in read_by(name, args):
                assert path.rstrip("/") in self.produced, f"{where}: nothing above writes {path}"
            if name == "data" and args.dataset == "mnist_digit":
                self.digits = True
            assert self.digits or not needs_digits(name, args), \
                f"{where}: needs MNIST digits, but nothing above runs `ladder data mnist_digit`"
            if name in ("train", "train-celeba"):
                run, settings = train_run(name, args)
                changed = {k for k in settings if self.settings.get(run, settings).get(k) != settings[k]}
                assert not changed, f"{where}: {run} was trained above with other {sorted(changed)}"
                self.settings[run] = settings
            self.produced += [p.rstrip("/") for p in written_by(name, args, self.produced)]
            self.checked.add(name)
        return self


@functools.cache
def walks() -> dict[str, Walk]:
    """Each page's walk: the README's from a fresh clone, each docs page's after the README."""
    readme = Walk().run(README)
    return {README: readme, **{page: Walk(readme).run(page) for page in DOCS}}


requires_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@requires_make
def test_every_page_commands_parse_and_read_only_what_earlier_ones_wrote():
    done = walks()
    assert set(done) == set(PAGES) and len(DOCS) >= 7, DOCS
    checked = set().union(*(w.checked for w in done.values()))
    assert checked >= set(PARSERS), set(PARSERS) - checked
    tools = {os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "tools", "*.py"))}
    assert checked >= tools, tools - checked


def inline_script_commands(text: str) -> list[list[str]]:
    """The `python tools/...` and `python benchmarks/...` commands quoted inline in a page's text."""
    spans = re.findall(r"`(python (?:%s)/[^`\n]+)`" % "|".join(SCRIPT_DIRS), without_fences(text))
    return [shlex.split(span) for span in spans]


def test_inline_script_commands_parse():
    seen = set()
    for page in PAGES:
        for words in inline_script_commands(read(page)):
            script = script_name(words)
            parse_or_fail(script_parser(script)(), words[2:], f"{page}: `{' '.join(words)}`")
            seen.add(os.path.dirname(script))
    assert "benchmarks" in seen, seen  # the benchmarks are quoted inline only


@pytest.mark.parametrize("commands, complaint", [
    ("ladder train --prior gmm --out-dir runs/a\nladder evaluate runs/b", "nothing above writes runs/b"),
    ("ladder train --prior gmm --out-dir runs/a\nladder train --prior gmm --set code_size=8 --out-dir runs/a",
     r"runs/a was trained above with other \['code_size'\]"),
    ("ladder train --dataset mnist_digit --out-dir runs/a", "needs MNIST digits"),
    ("python tools/paper_table.py --dataset mnist_fashion runs/results.json",
     "nothing above writes runs/results.json"),
    ("ladder reproduce --priors gmm --seeds 0 --results runs/r\n"
     "python tools/paper_table.py --dataset mnist_fashion runs/r.json --standard runs/r.jsonpython "
     "tools/paper_table.py --dataset mnist_fashion runs/r.json", "does not parse"),
    ("ladder train --prior gmm --out-dir runs/a\n"
     "python tools/readme_figures.py --out f.png --copy runs/b/interp/strip.png", "nothing above writes"),
])
def test_a_page_with_a_wrong_command_fails_the_check(commands, complaint):
    """The walk itself can fail: a run read before it is written, one run trained with two
    settings, MNIST digits used before they are fetched, a tool's input never written, two
    commands run together on one line."""
    with pytest.raises(AssertionError, match=complaint):
        Walk().run("page.md", f"```bash\n{commands}\n```\n")


@requires_make
def test_python_snippets_load_what_commands_wrote():
    done = walks()
    loads = {page: re.findall(r'tf\.saved_model\.load\("([^"]+)"\)', read(page)) for page in PAGES}
    assert any(loads.values())
    for page, paths in loads.items():
        for path in paths:
            assert path.rstrip("/") in done[page].produced, f"{page}: nothing writes {path}"
