"""Whole training epochs with tf.data's autotuning model on (TensorFlow's default) and off
(``ladder_tf.data.images.finish_pipeline``, the package's default), printed as JSON.

Two normal-prior trainers on the same data, their epochs interleaved (on, off, on, off, ...)
so that a change in the machine's load hits both alike. Per epoch: wall seconds, the
process's CPU seconds, and the seconds in which the cores stood idle (wall minus CPU over
the cores TensorFlow uses); the ratios of the medians and of the means, on over off (the
stall that the autotuning model causes comes at some epochs' ends, not at every one).

    python benchmarks/input_pipeline.py --train-size 60000 --epochs 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_throughput import make_trainer, timed_epoch  # noqa: E402

from ladder_tf import config as config_lib  # noqa: E402
from ladder_tf.data import images, load_dataset  # noqa: E402


def parser() -> argparse.ArgumentParser:
    """This script's command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/mnist_fashion.json")
    p.add_argument("--train-size", type=int, default=60000)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per setting (interleaved)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return p


def main() -> None:
    args = parser().parse_args()
    cfg = config_lib.load(args.config, args.set)
    data = load_dataset(cfg.exp_name, allow_download=False, train_size=args.train_size)
    cores = os.cpu_count() or 1
    settings = {"autotune_on": True, "autotune_off": False}
    rows: dict[str, list] = {name: [] for name in settings}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {name: make_trainer("normal", argparse.Namespace(config=args.config, set=args.set,
                                                                    epochs=args.epochs),
                                       data, os.path.join(tmp, name)) for name in settings}
        for epoch in range(1, args.epochs + 1):
            for name, on in settings.items():
                images.AUTOTUNE_MODEL = on
                row = timed_epoch(trainers[name], epoch)
                row["idle_seconds"] = max(row["seconds"] - row["cpu_seconds"] / cores, 0.0)
                rows[name].append(row)
    keys = ("seconds", "cpu_seconds", "idle_seconds", "training")
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in keys} for name, rs in rows.items()}
    means = {name: {k: statistics.mean(r[k] for r in rs) for k in keys} for name, rs in rows.items()}
    print(json.dumps({"benchmark": "input_pipeline", "config": args.config, "train_size": len(data.x_train),
                      "cpu_count": cores, "load_average_start": load_start,
                      "load_average_end": os.getloadavg(), "epochs": rows, "medians": medians, "means": means,
                      "max_idle_seconds": {n: max(r["idle_seconds"] for r in rs) for n, rs in rows.items()},
                      "epoch_time_ratio_on_over_off": medians["autotune_on"]["seconds"]
                      / medians["autotune_off"]["seconds"],
                      "mean_epoch_time_ratio_on_over_off": means["autotune_on"]["seconds"]
                      / means["autotune_off"]["seconds"]}, indent=2))


if __name__ == "__main__":
    main()
