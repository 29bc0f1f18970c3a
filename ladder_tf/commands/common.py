"""Shared command-line plumbing of the `ladder` commands: parsers, errors, TensorFlow's start-up noise.

The commands (``ladder_tf.commands``) build their parsers with ``new_parser`` so every
``--help`` looks alike, report mistakes with ``fail`` (one line, exit 2) and call
``quiet_tensorflow`` once their arguments parsed.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import warnings
from typing import Iterator, NoReturn

from ladder_tf.config import CONFIG_DIR, ConfigError, config_path
from ladder_tf.io_utils import error_line

# Lines TensorFlow's C++ runtime writes while it starts (CUDA probes, oneDNN and CPU notices):
# glog-style "I0000 00:00:17...  123 file.cc:45] ...", absl's pre-initialisation notice and the
# CPU-feature notice's second line. Some are written before TF_CPP_MIN_LOG_LEVEL is read.
TF_STARTUP_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] |"
                             r"WARNING: All log messages before absl::InitializeLog\(\) |"
                             r"To enable the following instructions: )")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help as written: the description's line breaks kept, a flag's default shown only
    when it has one (no "(default: None)" or "(default: False)")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or default == [] or default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def new_parser(description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the commands' help layout and the shared ``--verbose``.

    ``description``: the command's docstring (first line: what it does; then examples).
    """
    p = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's start-up messages (CUDA probes, oneDNN notices)")
    return p


def add_run_length_flags(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """--epochs, --steps-per-epoch, --train-size (training and reproduce)."""
    length = p.add_argument_group("run length")
    length.add_argument("--epochs", type=int, metavar="N", help="number of epochs (config num_epochs)")
    length.add_argument("--steps-per-epoch", type=int, metavar="N",
                        help="cap on training steps per epoch, for quick runs")
    length.add_argument("--train-size", type=int, metavar="N", help="use only the first N training images")
    return length


DATA_DIR_HELP = ("where the data set is: mnist_digit / mnist_fashion, a folder of the four IDX files or "
                 "a Keras-style .npz; celeba, the aligned JPEG folder (img_align_celeba); folder, any "
                 "folder of images (subfolders searched); tfds:NAME, the TensorFlow Datasets data "
                 "directory holding NAME prepared")


def add_data_flags(p: argparse.ArgumentParser, run: bool = False) -> argparse._ArgumentGroup:
    """--data-dir and --no-download, in a "data" group the caller may extend; ``run``: the
    command reads trained runs, whose config.json records where their data came from."""
    data = p.add_argument_group("data")
    recorded = ("; default: the directory recorded in the run's config.json (data_dir), else the "
                "data set's usual places" if run else "; it is recorded in the run's config.json")
    data.add_argument("--data-dir", metavar="PATH", help=DATA_DIR_HELP + recorded)
    data.add_argument("--no-download", action="store_true",
                      help="never try a TensorFlow Datasets download (MNIST sets; image sets are "
                      "never downloaded)")
    return data


def fail(message: str, status: int = 2) -> NoReturn:
    """Print one clear error line and exit (2 for user mistakes)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def error_text(err: OSError) -> str:
    """One line for an OSError: 'PATH: reason' when it names a file, else its message."""
    if err.filename and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return error_line(err)


@contextlib.contextmanager
def hidden_startup_lines() -> Iterator[None]:
    """Hold back what is written to file descriptor 2 (C++ included) inside the block, then
    pass on everything but TensorFlow's start-up lines (``TF_STARTUP_LINE``)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (a detached process): nothing to hide
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(keepends=True) if not TF_STARTUP_LINE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def quiet_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow without its C++ start-up lines unless ``verbose``; plain warnings.

    TF_CPP_MIN_LOG_LEVEL=3 (unless already set) hides C++ log lines written after start-up,
    such as libjpeg's 'Premature end of JPEG data' or Grappler's 'remapper failed' (0 with
    ``verbose``);
    the ones absl writes before its logging is initialised ignore it, so the import itself
    runs under ``hidden_startup_lines``. Call it once the arguments are parsed, so --help
    and argument errors never wait for TensorFlow.
    """
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        with hidden_startup_lines():
            import tensorflow  # noqa: F401


__all__ = ["fail", "ConfigError", "quiet_tensorflow", "new_parser", "HelpFormatter",
           "hidden_startup_lines", "CONFIG_DIR", "config_path", "add_run_length_flags",
           "add_data_flags", "error_text"]
