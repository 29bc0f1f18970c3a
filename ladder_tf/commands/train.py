"""`ladder train` (MNIST digits, Fashion-MNIST, image folders, TFDS image sets) and
`ladder train-celeba` (CelebA, or any image set on several devices): argument checks, data
loading and one clear line for every failure; training and export: ladder_tf.workflows.train."""
from __future__ import annotations

import argparse
import os
from typing import Sequence

from ladder_tf import config as config_lib
from ladder_tf.commands.common import (ConfigError, add_data_flags, add_run_length_flags, error_text, fail,
                                       new_parser, quiet_tensorflow)
from ladder_tf.config import (PRIOR_ALIASES, PRIOR_NAMES, SAFE_ON_RESUME, TFDS_PREFIX, Config, config_path,
                              is_tfds)

MNIST_HELP = """Train a VAE with any prior on MNIST digits, Fashion-MNIST, any image folder or a
prepared TensorFlow Datasets image set.

    ladder train --prior ladder                                  # configs/mnist_fashion.json
    ladder train --dataset mnist_digit --prior gmm --epochs 30 --seed 1
    ladder train --prior normal --epochs 1 --steps-per-epoch 50 --train-size 5000 --set code_size=8
    ladder train --dataset folder --data-dir ~/pictures --set test_size=500   # configs/folder.json, 64x64
    ladder train --dataset tfds:cifar10 --set dim_input_x=32 --set dim_input_y=32
"""
CELEBA_HELP = """Train a VAE with any prior on CelebA 128x128 (or any image set: --dataset folder,
tfds:NAME), on one device or several.

    ladder train-celeba --data-dir /data/img_align_celeba --cache-dir /data/cache --prior ladder
    ladder train-celeba ... --strategy mirrored --mixed-precision    # all local GPUs, bfloat16
    TF_CONFIG='{"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 0}}' \\
        ladder train-celeba ... --strategy multiworker                 # one command per machine
"""
IMAGE_SETS = ("folder", "tfds:NAME")


def is_allowed(dataset: str, allowed: Sequence[str]) -> bool:
    """True when ``dataset`` is one of ``allowed``, where "tfds:NAME" stands for any TFDS name."""
    return dataset in allowed or ("tfds:NAME" in allowed and is_tfds(dataset))


def dataset_type(allowed: Sequence[str]):
    """An argparse type: a name of ``allowed`` (see ``is_allowed``)."""
    def check(text: str) -> str:
        if is_allowed(text, allowed):
            return text
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(allowed)}")
    return check


def shipped_config(dataset: str) -> str:
    """The shipped config of a data set: configs/<dataset>.json, folder.json for tfds:NAME."""
    return "folder" if dataset.startswith(TFDS_PREFIX) else dataset


def training_parser(description: str, datasets: Sequence[str]) -> argparse.ArgumentParser:
    """The flags every training command shares, grouped as --help shows them."""
    p = new_parser(description)
    what = p.add_argument_group("model and config")
    what.add_argument("--config", metavar="PATH", help="JSON config (the original's key names), or the "
                      "name of a shipped one (mnist_fashion, mnist_digit, mnist_digit_2d, celeba, "
                      "folder); default: the shipped <dataset> (folder for tfds:NAME)")
    what.add_argument("--dataset", type=dataset_type(datasets), metavar="|".join(datasets),
                      help="data set (sets exp_name); tfds:NAME is a TensorFlow Datasets image set "
                      f"prepared on disk; default: the config's exp_name, or {datasets[0]} without --config")
    what.add_argument("--prior", metavar="NAME", help=f"prior: {', '.join(PRIOR_NAMES)} (or the "
                      f"original's {', '.join(PRIOR_ALIASES)})")
    what.add_argument("--seed", metavar="N", type=int, help="random seed (config seed)")
    what.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override any config key, e.g. --set learning_rate_ae=1e-4 (repeatable)")
    add_run_length_flags(p)
    data = add_data_flags(p)
    data.add_argument("--cache-dir", metavar="DIR", help="image data sets (celeba, folder, tfds:NAME): keep "
                      "a one-time preprocessed copy of the images here (about 10 GB for all of CelebA at "
                      "128x128) and reuse it in later runs; tfds:NAME: default <TFDS dir>/ladder_tf_cache")
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
    path = config_path(args.config or shipped_config(dataset or default_dataset))
    cfg = config_lib.load(path, args.set, exp_name=dataset, prior=args.prior,
                          num_epochs=args.epochs, seed=args.seed,
                          steps_per_epoch=args.steps_per_epoch, train_size=args.train_size,
                          mixed_precision=getattr(args, "mixed_precision", None))
    return cfg


def train_and_report(cfg: Config, data, run_dir: str, args: argparse.Namespace,
                     strategy=None, chief: bool = True) -> int:
    """Train (and export) for a CLI: one clear message and an exit status for every failure."""
    # imported here, not at the top: `ladder train --help` answers without loading TensorFlow
    from ladder_tf.locks import RunLockedError
    from ladder_tf.workflows.train import train
    from ladder_tf.workflows.training import TrainingDivergedError

    try:
        rows = train(cfg, data, run_dir, show_progress=not args.no_progress, strategy=strategy,
                     export=not args.no_export, allow_config_change=args.allow_config_change)
    except (ConfigError, RunLockedError) as err:
        fail(str(err))
    except OSError as err:  # unreadable checkpoints, permissions, a full disk
        fail(error_text(err))
    except TrainingDivergedError as err:
        fail(str(err), status=1)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (ladder_tf.workflows.interrupts.Interrupted)
        fail(f"{err or 'interrupted'}; re-run the same command to resume from the last checkpoint",
             status=128 + getattr(err, "signum", 2))
    if rows and chief:
        last = rows[-1]
        print(f"done: epoch {last['epoch']}, test -ELBO {-last['test_elbo']:.2f} nats/image, "
              f"outputs in {run_dir}")
    return 0


def default_run_dir(cfg: Config) -> str:
    """experiments/<exp_name>/<prior>, where a run without --out-dir goes (tfds:a/b: tfds_a_b)."""
    return os.path.join("experiments", cfg.exp_name.replace(":", "_").replace("/", "_"), cfg.prior)


def run_dir_or_fail(args: argparse.Namespace, cfg: Config) -> str:
    """--out-dir (default ``default_run_dir``), refused in one line when it is an existing file."""
    run_dir = args.out_dir or default_run_dir(cfg)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        fail(f"--out-dir {run_dir} is an existing file, not a directory; give a new directory or "
             "a run directory to resume")
    return run_dir


def with_data_dir(cfg: Config, data_dir: str | None, run_dirs: Sequence[str]) -> Config:
    """``cfg`` with the data directory to read and record (config key data_dir, absolute):
    ``data_dir`` (--data-dir) when given, else the config's own, else the one recorded in the
    first of ``run_dirs`` that has one (a resumed run reads its data again), else ''."""
    from ladder_tf.workflows.resume import recorded_config

    chosen = data_dir or cfg.data_dir
    for run_dir in run_dirs if not chosen else ():
        try:
            old = recorded_config(run_dir)
        except ConfigError:  # a damaged config.json: training reports it
            continue
        if old is not None and old.exp_name == cfg.exp_name and old.data_dir:
            chosen = old.data_dir
            break
    return config_lib.apply_overrides(cfg, data_dir=os.path.abspath(chosen) if chosen else "")


def load_or_fail(cfg: Config, data_dir: str | None, **kwargs):
    """``ladder_tf.data.load_run_data``, with one error line (exit 2) for every data mistake."""
    from ladder_tf.data import DataNotFoundError, load_run_data

    try:
        return load_run_data(cfg, data_dir, **kwargs)
    except (DataNotFoundError, ValueError) as err:
        fail(str(err))
    except OSError as err:  # an unreadable data folder, an unwritable cache
        fail(error_text(err))


def settled_config(args: argparse.Namespace, default_dataset: str, allowed: Sequence[str],
                   command: str) -> tuple[Config, str]:
    """(effective config with its data directory, run directory); exit 2 on a mistake."""
    try:
        cfg = config_from_args(args, default_dataset)
    except ConfigError as err:
        fail(str(err))
    if not is_allowed(cfg.exp_name, allowed):
        fail(f"{command} trains {', '.join(allowed)}, but the config's exp_name is '{cfg.exp_name}'"
             + (" (use ladder train-celeba for celeba)" if cfg.exp_name == "celeba" else ""))
    if args.cache_dir and not config_lib.image_dataset(cfg.exp_name):
        fail(f"--cache-dir applies to the image data sets (celeba, folder, tfds:NAME), not {cfg.exp_name}")
    run_dir = run_dir_or_fail(args, cfg)
    cfg = with_data_dir(cfg, args.data_dir, [run_dir])
    if cfg.exp_name == "folder" and not cfg.data_dir:
        fail("--dataset folder needs --data-dir DIR: a folder of images (subfolders are searched)")
    return cfg, run_dir


TRAIN_SETS = ("mnist_fashion", "mnist_digit") + IMAGE_SETS
TRAIN_CELEBA_SETS = ("celeba",) + IMAGE_SETS


def mnist_parser() -> argparse.ArgumentParser:
    """The ``ladder train`` arguments."""
    return training_parser(MNIST_HELP, TRAIN_SETS)


def celeba_parser() -> argparse.ArgumentParser:
    """The ``ladder train-celeba`` arguments."""
    return add_distribution_flags(training_parser(CELEBA_HELP, TRAIN_CELEBA_SETS))


def main_mnist(argv: list[str] | None = None) -> int:
    """`ladder train`: returns the exit status (2 for a usage or data mistake)."""
    args = mnist_parser().parse_args(argv)
    cfg, run_dir = settled_config(args, "mnist_fashion", TRAIN_SETS, "ladder train")
    quiet_tensorflow(args.verbose)
    data = load_or_fail(cfg, args.data_dir, allow_download=not args.no_download,
                        train_size=cfg.train_size, cache_dir=args.cache_dir)
    print(f"training {cfg.prior} prior on {cfg.exp_name} ({len(data.x_train)} train / {len(data.x_test)} "
          f"test images from {data.source}) into {run_dir}")
    return train_and_report(cfg, data, run_dir, args)


def main_celeba(argv: list[str] | None = None) -> int:
    """`ladder train-celeba`: returns the exit status (2 for a usage or data mistake)."""
    args = celeba_parser().parse_args(argv)
    cfg, run_dir = settled_config(args, "celeba", TRAIN_CELEBA_SETS, "ladder train-celeba")
    quiet_tensorflow(args.verbose)
    from ladder_tf import distributed  # the strategy must exist before other TensorFlow work
    try:
        strategy = distributed.make_strategy(args.strategy)
    except ValueError as err:
        fail(str(err))
    data = load_or_fail(cfg, args.data_dir, train_size=cfg.train_size, cache_dir=args.cache_dir)
    if distributed.is_chief(strategy):
        print(f"training {cfg.prior} prior on {cfg.exp_name} ({len(data.x_train)} train / {len(data.x_test)} "
              f"test images from {data.source}) into {run_dir}; {distributed.describe(strategy)}")
    return train_and_report(cfg, data, run_dir, args, strategy, distributed.is_chief(strategy))
