"""The `ladder` command family: one entry point that hands each sub-command to its ``main``.

    ladder COMMAND [options]        (or: python -m ladder_tf COMMAND [options])
    ladder COMMAND --help

A command's module is imported only when it runs, so ``ladder --help`` and
``ladder train --help`` answer without starting TensorFlow.
"""
from __future__ import annotations

import importlib
import os
import sys
from contextlib import nullcontext
from typing import Callable, NamedTuple

from ladder_tf import __version__


class Command(NamedTuple):
    """A sub-command: where its ``main(argv) -> int`` lives and one line of help."""

    target: str  # "module:function"
    summary: str


COMMANDS: dict[str, Command] = {
    "train": Command("ladder_tf.commands.train:main_mnist",
                     "train a VAE with any prior on MNIST digits or Fashion-MNIST"),
    "train-celeba": Command("ladder_tf.commands.train:main_celeba",
                            "train on CelebA 128x128, on one device or several"),
    "evaluate": Command("ladder_tf.commands.evaluate:main",
                        "FID (the paper's Table 1 layout) and log-likelihood of trained runs"),
    "reproduce": Command("ladder_tf.commands.reproduce:main",
                         "train every prior x seed on one data set and tabulate the results"),
    "export": Command("ladder_tf.commands.export:main", "export a trained run as a TensorFlow SavedModel"),
    "interpolate": Command("ladder_tf.commands.interpolate:main",
                           "shortest path and shortest likely path between two test images"),
    "sample": Command("ladder_tf.commands.sample:main",
                      "write generated or reconstructed images of a trained run"),
    "data": Command("ladder_tf.commands.data:main",
                    "get MNIST digits or Fashion-MNIST once, checked, where training finds them"),
    "fid": Command("ladder_tf.commands.fid:main_fid",
                   "FID between two image folders, uint8 .npz files or statistics files"),
    "fid-stats": Command("ladder_tf.commands.fid:main_stats",
                         "FID statistics (pytorch-fid's mu/sigma) of an image folder or .npz, once"),
    "fid-weights": Command("ladder_tf.commands.fid_weights:main",
                           "convert the standard FID Inception weights once (no torch needed)"),
}


def usage() -> str:
    """The text of ``ladder --help``."""
    width = max(map(len, COMMANDS))
    lines = [f"usage: ladder COMMAND [options]      (ladder_tf {__version__})", "",
             "LaDDer and its baseline priors: train, evaluate, export, explore.", "", "commands:"]
    lines += [f"  {name:<{width}}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += ["", "`ladder COMMAND --help` lists a command's options; --verbose (any command) "
              "shows TensorFlow's start-up messages.", "",
              "examples:", "  ladder train --epochs 5 --train-size 5000",
              "  ladder export experiments/mnist_fashion/ladder"]
    return "\n".join(lines) + "\n"


def load(name: str, verbose: bool = False) -> Callable[[list[str]], int]:
    """The ``main`` of command ``name``; unless ``verbose`` its module is imported with
    TensorFlow's start-up lines hidden (some modules import TensorFlow at load time)."""
    from ladder_tf.commands.common import fail, hidden_startup_lines

    module_name, func = COMMANDS[name].target.split(":")
    try:
        with nullcontext() if verbose else hidden_startup_lines():
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        fail(f"the {name} command is not part of this installation ({module_name} is missing)")
    return getattr(module, func)


def main(argv: list[str] | None = None) -> int:
    """``ladder COMMAND ...``: the exit status of the command (2 for an unknown one)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        (sys.stdout if argv else sys.stderr).write(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"ladder_tf {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        from ladder_tf.commands.common import fail

        fail(f"unknown command {name!r}; choose from {', '.join(COMMANDS)} (ladder --help)")
    verbose = "--verbose" in rest
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = load(name, verbose)
    saved, sys.argv = sys.argv, [f"ladder {name}", *rest]  # usage lines and run records name it
    try:
        return int(command(rest) or 0)
    finally:
        sys.argv = saved
