#!/usr/bin/env python
"""Train a VAE with any prior on MNIST digits or Fashion-MNIST.

    python train_mnist.py --config configs/mnist_fashion.json --prior ladder
"""
from __future__ import annotations

from ladder_tf.cli import (ConfigError, config_from_args, default_run_dir, error_text, fail,
                           quiet_tensorflow, train_and_report, training_parser)


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__.strip().splitlines()[0], ["mnist_digit", "mnist_fashion"])
    args = parser.parse_args(argv)
    quiet_tensorflow(args.verbose)
    try:
        cfg = config_from_args(args, default_dataset="mnist_fashion")
    except ConfigError as err:
        fail(str(err))
    if not cfg.exp_name.startswith("mnist"):
        fail(f"train_mnist.py trains mnist_digit or mnist_fashion, but the config's exp_name is "
             f"'{cfg.exp_name}'")

    from ladder_tf.data import DataNotFoundError, load_dataset

    try:
        data = load_dataset(cfg.exp_name, args.data_dir, allow_download=not args.no_download,
                            train_size=cfg.train_size)
    except (DataNotFoundError, ValueError) as err:
        fail(str(err))
    except OSError as err:  # an unreadable data folder, an unwritable cache
        fail(error_text(err))
    run_dir = args.out_dir or default_run_dir(cfg)
    print(f"training {cfg.prior} prior on {cfg.exp_name} ({len(data.x_train)} images from "
          f"{data.source}) into {run_dir}")
    return train_and_report(cfg, data, run_dir, args)


if __name__ == "__main__":
    raise SystemExit(main())
