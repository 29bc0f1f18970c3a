"""Training throughput per prior, printed as JSON.

For each prior: images/s of the compiled training step alone (fixed batch, both the data
VAE step and the prior's own step), and of whole epochs including data loading, the
end-of-epoch refit and validation. Priors after the first are also reported as a ratio of
their epoch time to the first prior's (the LaDDer target: <= 1.3x a normal-prior epoch).

    python benchmarks/train_throughput.py --priors normal,ladder --train-size 60000
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ladder_tf import config as config_lib  # noqa: E402
from ladder_tf.data import load_dataset, to_float  # noqa: E402
from ladder_tf.training import Trainer  # noqa: E402


def measure(prior: str, args: argparse.Namespace, data) -> dict:
    cfg = config_lib.load(args.config, args.set, prior=prior, num_epochs=args.epochs + 1,
                          sg_pretraining=0)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, data, run_dir, show_progress=False)
        trainer._restore()
        trainer._begin_epoch(1)
        x = to_float(tf.constant(data.x_train[: cfg.batch_size]))
        seed = tf.constant([0, 0], tf.int64)
        for _ in range(3):
            trainer._train_step(x, seed)
        t0 = time.perf_counter()
        for i in range(args.steps):
            out = trainer._train_step(x, tf.constant([0, i], tf.int64))
        float(out["elbo"])
        step_s = (time.perf_counter() - t0) / args.steps
        trainer.step.assign(0)
        epochs = []
        for epoch in range(1, args.epochs + 1):
            t0 = time.perf_counter()
            trainer._run_epoch(epoch)
            epochs.append(time.perf_counter() - t0)
    return {"prior": prior, "batch_size": cfg.batch_size, "step_seconds": step_s,
            "step_images_per_second": cfg.batch_size / step_s,
            "epoch_seconds": epochs, "epoch_seconds_best": min(epochs),
            "epoch_images_per_second": trainer.steps_per_epoch * cfg.batch_size / min(epochs),
            "steps_per_epoch": trainer.steps_per_epoch}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/mnist_fashion.json")
    p.add_argument("--priors", default="normal")
    p.add_argument("--train-size", type=int, default=60000)
    p.add_argument("--steps", type=int, default=30, help="timed steps for the step figure")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (best one is reported)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    cfg = config_lib.load(args.config, args.set)
    data = load_dataset(cfg.exp_name, allow_download=False, train_size=args.train_size)
    results = [measure(prior, args, data) for prior in args.priors.split(",")]
    base = results[0]["epoch_seconds_best"]
    for r in results:
        r["epoch_time_ratio_vs_" + results[0]["prior"]] = r["epoch_seconds_best"] / base
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    print(json.dumps({"benchmark": "train_throughput", "config": args.config,
                      "train_size": len(data.x_train), "devices": devices,
                      "gpu": bool(tf.config.list_physical_devices("GPU")),
                      "cpu_count": os.cpu_count(), "machine": platform.machine(),
                      "tensorflow": tf.__version__, "results": results}, indent=2))


if __name__ == "__main__":
    main()
