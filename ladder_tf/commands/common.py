"""Shared command-line plumbing of the `ladder` commands: parsers, errors, TensorFlow's start-up noise.

The commands (``ladder_tf.commands`` and the ``main`` of reproduce, export, interpolate)
build their parsers with ``new_parser`` so every ``--help`` looks alike, report mistakes
with ``fail`` (one line, exit 2) and call ``quiet_tensorflow`` once their arguments parsed.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import warnings
from typing import Iterator, Sequence

from ladder_tf import config as config_lib
from ladder_tf.config import CONFIG_DIR, Config, ConfigError, config_path
from ladder_tf.io_utils import error_line
from ladder_tf.workflows.resume import SAFE_ON_RESUME

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


def add_data_flags(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """--data-dir and --no-download, in a "data" group the caller may extend."""
    data = p.add_argument_group("data")
    data.add_argument("--data-dir", metavar="PATH",
                      help="local data: IDX files or a Keras-style .npz (see README)")
    data.add_argument("--no-download", action="store_true",
                      help="never try a TensorFlow Datasets download")
    return data


def training_parser(description: str, datasets: Sequence[str],
                    cache_dir: bool = False) -> argparse.ArgumentParser:
    """The flags every training command shares, grouped as --help shows them; ``cache_dir``
    adds --cache-dir (CelebA's preprocessed copy)."""
    p = new_parser(description)
    what = p.add_argument_group("model and config")
    what.add_argument("--config", metavar="PATH", help="JSON config (the original's key names), or the "
                      "name of a shipped one (mnist_fashion, mnist_digit, mnist_digit_2d, celeba); "
                      "default: the shipped <dataset>")
    what.add_argument("--dataset", choices=list(datasets), help="data set (sets exp_name); "
                      f"default: the config's exp_name, or {datasets[-1]} without --config")
    what.add_argument("--prior", metavar="NAME", help="prior: normal, gmm, vampprior, hierarchical, ladder "
                      "(or the original's standard_gaussian, GMM, vampPrior, ours)")
    what.add_argument("--seed", metavar="N", type=int, help="random seed (config seed)")
    what.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override any config key, e.g. --set learning_rate_ae=1e-4 (repeatable)")
    add_run_length_flags(p)
    data = add_data_flags(p)
    if cache_dir:
        data.add_argument("--cache-dir", metavar="DIR", help="keep a one-time preprocessed copy of the images "
                          "here (about 10 GB for all of CelebA) and reuse it in later runs")
    out = p.add_argument_group("outputs")
    out.add_argument("--out-dir", metavar="DIR", help="run directory; default experiments/<exp_name>/<prior>; "
                     "re-running with the same directory resumes")
    out.add_argument("--no-progress", action="store_true",
                     help="no progress bar: one line per epoch only (for batch jobs)")
    out.add_argument("--no-export", action="store_true",
                     help="do not write RUN_DIR/saved_model at the end of training")
    out.add_argument("--allow-config-change", action="store_true",
                     help="resume a run directory even when keys other than "
                     f"{', '.join(SAFE_ON_RESUME)} differ from its config.json (each change is "
                     "recorded in config_changes.jsonl)")
    return p


def add_distribution_flags(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--strategy and --mixed-precision (train-celeba), in their own --help group."""
    g = p.add_argument_group("devices")
    g.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default",
                   help="tf.distribute strategy: one device; MirroredStrategy over the local GPUs; "
                   "MultiWorkerMirroredStrategy over the machines named in TF_CONFIG")
    g.add_argument("--mixed-precision", nargs="?", const="bfloat16", choices=["float16", "bfloat16"],
                   help="compute the image networks in 16-bit floats (config mixed_precision); "
                   "alone: bfloat16, which needs no loss scaling")
    return p


def config_from_args(args: argparse.Namespace, default_dataset: str) -> Config:
    """The effective config: file, then --set overrides, then the dedicated flags."""
    dataset = args.dataset
    path = config_path(args.config or dataset or default_dataset)
    cfg = config_lib.load(path, args.set, exp_name=dataset, prior=args.prior,
                          num_epochs=args.epochs, seed=args.seed,
                          steps_per_epoch=args.steps_per_epoch, train_size=args.train_size,
                          mixed_precision=getattr(args, "mixed_precision", None))
    return cfg


def train_and_report(cfg: Config, data, run_dir: str, args: argparse.Namespace,
                     strategy=None, chief: bool = True) -> int:
    """Run the Trainer for a CLI: one clear message and an exit status for every failure."""
    from ladder_tf.locks import RunLockedError
    from ladder_tf.workflows.training import Trainer, TrainingDivergedError

    try:
        trainer = Trainer(cfg, data, run_dir, show_progress=not args.no_progress, strategy=strategy,
                          export_at_end=not args.no_export,
                          allow_config_change=args.allow_config_change)
        rows = trainer.fit()
    except (ConfigError, RunLockedError) as err:
        fail(str(err))
    except OSError as err:  # unreadable checkpoints, permissions, a full disk
        fail(error_text(err))
    except TrainingDivergedError as err:
        fail(str(err), status=1)
    except KeyboardInterrupt:
        fail("interrupted; re-run the same command to resume from the last checkpoint", status=130)
    if rows and chief:
        last = rows[-1]
        print(f"done: epoch {last['epoch']}, test -ELBO {-last['test_elbo']:.2f} nats/image, "
              f"outputs in {run_dir}")
    return 0


def default_run_dir(cfg: Config) -> str:
    return os.path.join("experiments", cfg.exp_name, cfg.prior)


def fail(message: str, status: int = 2) -> "NoReturn":  # noqa: F821
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


__all__ = ["training_parser", "add_distribution_flags", "config_from_args", "default_run_dir",
           "fail", "ConfigError", "quiet_tensorflow", "new_parser", "HelpFormatter",
           "hidden_startup_lines", "CONFIG_DIR", "config_path", "add_run_length_flags",
           "add_data_flags", "error_text"]
