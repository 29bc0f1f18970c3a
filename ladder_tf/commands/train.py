"""`ladder train` (MNIST digits, Fashion-MNIST) and `ladder train-celeba`: argument checks,
data loading and one clear line for every failure; the loop itself is ladder_tf.workflows.training."""
from __future__ import annotations

from ladder_tf.commands.common import (ConfigError, add_distribution_flags, config_from_args, default_run_dir,
                           error_text, fail, quiet_tensorflow, train_and_report, training_parser)

MNIST_HELP = """Train a VAE with any prior on MNIST digits or Fashion-MNIST.

    ladder train --prior ladder                                  # configs/mnist_fashion.json
    ladder train --dataset mnist_digit --prior gmm --epochs 30 --seed 1
    ladder train --prior normal --epochs 1 --steps-per-epoch 50 --train-size 5000 --set code_size=8
"""
CELEBA_HELP = """Train a VAE with any prior on CelebA 128x128, on one device or several.

    ladder train-celeba --data-dir /data/img_align_celeba --cache-dir /data/cache --prior ladder
    ladder train-celeba ... --strategy mirrored --mixed-precision    # all local GPUs, bfloat16
    TF_CONFIG='{"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 0}}' \\
        ladder train-celeba ... --strategy multiworker                 # one command per machine
"""


def load_or_fail(dataset: str, data_dir: str | None, **kwargs):
    """``ladder_tf.data.load_dataset``, with one error line (exit 2) for every data mistake."""
    from ladder_tf.data import DataNotFoundError, load_dataset

    try:
        return load_dataset(dataset, data_dir, **kwargs)
    except (DataNotFoundError, ValueError) as err:
        fail(str(err))
    except OSError as err:  # an unreadable data folder, an unwritable cache
        fail(error_text(err))


def main_mnist(argv: list[str] | None = None) -> int:
    """`ladder train`: returns the exit status (2 for a usage or data mistake)."""
    args = training_parser(MNIST_HELP, ["mnist_digit", "mnist_fashion"]).parse_args(argv)
    try:
        cfg = config_from_args(args, default_dataset="mnist_fashion")
    except ConfigError as err:
        fail(str(err))
    if not cfg.exp_name.startswith("mnist"):
        fail(f"ladder train trains mnist_digit or mnist_fashion, but the config's exp_name is "
             f"'{cfg.exp_name}' (use ladder train-celeba for celeba)")
    quiet_tensorflow(args.verbose)
    data = load_or_fail(cfg.exp_name, args.data_dir, allow_download=not args.no_download,
                        train_size=cfg.train_size)
    run_dir = args.out_dir or default_run_dir(cfg)
    print(f"training {cfg.prior} prior on {cfg.exp_name} ({len(data.x_train)} images from "
          f"{data.source}) into {run_dir}")
    return train_and_report(cfg, data, run_dir, args)


def main_celeba(argv: list[str] | None = None) -> int:
    """`ladder train-celeba`: returns the exit status (2 for a usage or data mistake)."""
    parser = add_distribution_flags(training_parser(CELEBA_HELP, ["celeba"], cache_dir=True))
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args, default_dataset="celeba")
    except ConfigError as err:
        fail(str(err))
    if cfg.exp_name != "celeba":
        fail(f"ladder train-celeba trains celeba, but the config's exp_name is '{cfg.exp_name}'")
    quiet_tensorflow(args.verbose)
    from ladder_tf import distributed  # the strategy must exist before other TensorFlow work
    try:
        strategy = distributed.make_strategy(args.strategy)
    except ValueError as err:
        fail(str(err))
    data = load_or_fail("celeba", args.data_dir, train_size=cfg.train_size, cfg=cfg,
                        cache_dir=args.cache_dir)
    run_dir = args.out_dir or default_run_dir(cfg)
    if distributed.is_chief(strategy):
        print(f"training {cfg.prior} prior on celeba ({len(data.x_train)} train / {len(data.x_test)} "
              f"test images from {data.source}) into {run_dir}; {distributed.describe(strategy)}")
    return train_and_report(cfg, data, run_dir, args, strategy, distributed.is_chief(strategy))
