"""Shared command-line plumbing of the training scripts (train_mnist.py, later train_celeba.py)."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Sequence

from ladder_tf import config as config_lib
from ladder_tf.config import Config, ConfigError
from ladder_tf.io_utils import error_line
from ladder_tf.resume import SAFE_ON_RESUME

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def training_parser(description: str, datasets: Sequence[str]) -> argparse.ArgumentParser:
    """The flags every training script shares."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", help="JSON config (the original's key names); default: "
                   "configs/<dataset>.json")
    p.add_argument("--dataset", choices=list(datasets), help="data set (sets exp_name); "
                   f"default: the config's exp_name, or {datasets[-1]} without --config")
    p.add_argument("--prior", help="prior: normal, gmm, vampprior, hierarchical, ladder "
                   "(or the original's standard_gaussian, GMM, vampPrior, ours)")
    p.add_argument("--epochs", type=int, help="number of epochs (config num_epochs)")
    p.add_argument("--steps-per-epoch", type=int, help="cap on training steps per epoch, for quick runs")
    p.add_argument("--train-size", type=int, help="use only the first N training images")
    p.add_argument("--data-dir", help="local data: IDX files or a Keras-style .npz (see README)")
    p.add_argument("--out-dir", help="run directory; default experiments/<exp_name>/<prior>; "
                   "re-running with the same directory resumes")
    p.add_argument("--seed", type=int, help="random seed (config seed)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set learning_rate_ae=1e-4 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--no-export", action="store_true",
                   help="do not write RUN_DIR/saved_model at the end of training")
    p.add_argument("--no-download", action="store_true",
                   help="never try a TensorFlow Datasets download")
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume a run directory even when keys other than "
                   f"{', '.join(SAFE_ON_RESUME)} differ from its config.json (each change is "
                   "recorded in config_changes.jsonl)")
    add_verbose_flag(p)
    return p


def add_verbose_flag(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--verbose: show TensorFlow's C++ log lines, hidden otherwise (quiet_tensorflow)."""
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ log lines")
    return p


def add_distribution_flags(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--strategy and --mixed-precision (train_celeba.py)."""
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default",
                   help="tf.distribute strategy: one device; MirroredStrategy over the local GPUs; "
                   "MultiWorkerMirroredStrategy over the machines named in TF_CONFIG")
    p.add_argument("--mixed-precision", nargs="?", const="bfloat16", choices=["float16", "bfloat16"],
                   help="compute the image networks in 16-bit floats (config mixed_precision); "
                   "alone: bfloat16, which needs no loss scaling")
    return p


def config_from_args(args: argparse.Namespace, default_dataset: str) -> Config:
    """The effective config: file, then --set overrides, then the dedicated flags."""
    dataset = args.dataset
    path = args.config or os.path.join(CONFIG_DIR, f"{dataset or default_dataset}.json")
    cfg = config_lib.load(path, args.set, exp_name=dataset, prior=args.prior,
                          num_epochs=args.epochs, seed=args.seed,
                          steps_per_epoch=args.steps_per_epoch, train_size=args.train_size,
                          mixed_precision=getattr(args, "mixed_precision", None))
    return cfg


def train_and_report(cfg: Config, data, run_dir: str, args: argparse.Namespace,
                     strategy=None, chief: bool = True) -> int:
    """Run the Trainer for a CLI: one clear message and an exit status for every failure."""
    from ladder_tf.locks import RunLockedError
    from ladder_tf.training import Trainer, TrainingDivergedError

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


def quiet_tensorflow(verbose: bool = False) -> None:
    """Before TensorFlow is imported: hide its C++ log lines unless ``verbose``.

    Level 3 also hides C++ ERROR lines such as libjpeg's 'Premature end of JPEG data' or
    Grappler's 'remapper failed', which are reported (or harmless) without them; a
    TF_CPP_MIN_LOG_LEVEL already set by the user is kept. The lines logged while TensorFlow
    loads, which ignore that level, are filtered (ladder_tf.tf_logging). Python warnings
    become one 'warning: ...' line.
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from ladder_tf.tf_logging import filter_import_chatter
        filter_import_chatter()
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"


__all__ = ["training_parser", "add_distribution_flags", "config_from_args", "default_run_dir",
           "fail", "ConfigError", "quiet_tensorflow", "add_verbose_flag", "error_text"]
