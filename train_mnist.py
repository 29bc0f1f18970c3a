#!/usr/bin/env python
"""Train a VAE with any prior on MNIST digits or Fashion-MNIST.

    python train_mnist.py --config configs/mnist_fashion.json --prior ladder
"""
from __future__ import annotations

from ladder_tf.cli import (ConfigError, config_from_args, default_run_dir, fail,
                           quiet_tensorflow, training_parser)


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow()
    parser = training_parser(__doc__.strip().splitlines()[0], ["mnist_digit", "mnist_fashion"])
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args, default_dataset="mnist_fashion")
    except ConfigError as err:
        fail(str(err))
    if not cfg.exp_name.startswith("mnist"):
        fail(f"train_mnist.py trains mnist_digit or mnist_fashion, but the config's exp_name is "
             f"'{cfg.exp_name}'")

    from ladder_tf.data import DataNotFoundError, load_dataset
    from ladder_tf.training import Trainer, TrainingDivergedError

    try:
        data = load_dataset(cfg.exp_name, args.data_dir, allow_download=not args.no_download,
                            train_size=cfg.train_size)
    except (DataNotFoundError, ValueError) as err:
        fail(str(err))
    run_dir = args.out_dir or default_run_dir(cfg)
    print(f"training {cfg.prior} prior on {cfg.exp_name} ({len(data.x_train)} images from "
          f"{data.source}) into {run_dir}")
    try:
        trainer = Trainer(cfg, data, run_dir, show_progress=not args.no_progress,
                          export_at_end=not args.no_export)
        rows = trainer.fit()
    except ConfigError as err:
        fail(str(err))
    except TrainingDivergedError as err:
        fail(str(err), status=1)
    except KeyboardInterrupt:
        fail("interrupted; re-run the same command to resume from the last checkpoint", status=130)
    if rows:
        last = rows[-1]
        print(f"done: epoch {last['epoch']}, test -ELBO {-last['test_elbo']:.2f} nats/image, "
              f"outputs in {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
