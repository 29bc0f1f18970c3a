#!/usr/bin/env python
"""Train a VAE with any prior on CelebA 128x128, on one device or several.

    python train_celeba.py --data-dir /data/img_align_celeba --cache-dir /data/cache --prior ladder
    python train_celeba.py ... --strategy mirrored --mixed-precision     # all local GPUs, bfloat16
    TF_CONFIG='{"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 0}}' \\
        python train_celeba.py ... --strategy multiworker                 # one command per machine
"""
from __future__ import annotations

from ladder_tf.cli import (ConfigError, add_distribution_flags, config_from_args, default_run_dir,
                           error_text, fail, quiet_tensorflow, train_and_report, training_parser)


def main(argv: list[str] | None = None) -> int:
    parser = add_distribution_flags(training_parser(__doc__.strip().splitlines()[0], ["celeba"]))
    parser.add_argument("--cache-dir", help="keep a one-time preprocessed copy of the images here "
                        "(about 10 GB for all of CelebA) and reuse it in later runs")
    args = parser.parse_args(argv)
    quiet_tensorflow(args.verbose)
    try:
        cfg = config_from_args(args, default_dataset="celeba")
    except ConfigError as err:
        fail(str(err))
    if cfg.exp_name != "celeba":
        fail(f"train_celeba.py trains celeba, but the config's exp_name is '{cfg.exp_name}'")

    from ladder_tf import distributed  # the strategy must exist before other TensorFlow work
    try:
        strategy = distributed.make_strategy(args.strategy)
    except ValueError as err:
        fail(str(err))
    from ladder_tf.data import DataNotFoundError, load_dataset

    try:
        data = load_dataset("celeba", args.data_dir, train_size=cfg.train_size, cfg=cfg,
                            cache_dir=args.cache_dir)
    except (DataNotFoundError, ValueError) as err:
        fail(str(err))
    except OSError as err:  # an unreadable data folder, an unwritable cache
        fail(error_text(err))
    run_dir = args.out_dir or default_run_dir(cfg)
    if distributed.is_chief(strategy):
        print(f"training {cfg.prior} prior on celeba ({len(data.x_train)} train / {len(data.x_test)} "
              f"test images from {data.source}) into {run_dir}; {distributed.describe(strategy)}")
    return train_and_report(cfg, data, run_dir, args, strategy, distributed.is_chief(strategy))


if __name__ == "__main__":
    raise SystemExit(main())
