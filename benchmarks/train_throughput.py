"""Training throughput per prior, printed as JSON.

For each prior: images/s of the compiled training step alone (fixed batch, both the data
VAE step and the prior's own step), and whole epochs including data loading, the
end-of-epoch refit, validation on the test split and the epoch's outputs (figures,
metrics, checkpoint), each epoch split into those parts. The priors' epochs are
interleaved (epoch 1 of every prior, then epoch 2, ...) so that a change in the
machine's load hits all of them alike. Priors after the first are reported as ratios of
their median epoch time to the first prior's (the target: a LaDDer epoch with the
default sequential block updates <= 1.4x a normal-prior epoch; CPU-time ratios too,
which a stalled virtual machine leaves intact), and, for priors with a periodic expensive refit (LaDDer's
accurate fit every ``accurate_fit`` epochs), that refit is timed once and amortised.

    python benchmarks/train_throughput.py --priors normal,ladder,ladder:fused --train-size 60000
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from ladder_tf import config as config_lib  # noqa: E402
from ladder_tf.data import load_dataset, to_float  # noqa: E402
from ladder_tf.workflows.training import Trainer  # noqa: E402


def make_trainer(variant: str, args: argparse.Namespace, data, run_dir: str) -> Trainer:
    """A trainer past pre-training (the prior's own objective is live from epoch 1).

    ``variant``: a prior name, optionally with ``:sequential`` or ``:fused`` (block_update;
    without it, the config's, i.e. sequential in every shipped config).
    """
    prior, _, block_update = variant.partition(":")
    extra = {"block_update": block_update} if block_update else {}
    cfg = config_lib.load(args.config, args.set, prior=prior, num_epochs=args.epochs + 1,
                          sg_pretraining=0, **extra)
    trainer = Trainer(cfg, data, run_dir, show_progress=False)
    trainer.restore()
    return trainer


def step_seconds(trainer: Trainer, data, steps: int) -> float:
    """Mean seconds of one compiled training step on a fixed batch (after 3 warm-up steps)."""
    trainer.begin_epoch(1)
    x = to_float(tf.constant(data.x_train[: trainer.cfg.batch_size]))
    for i in range(3):
        trainer.train_step(x, tf.constant([0, i], tf.int64))
    t0 = time.perf_counter()
    for i in range(steps):
        out = trainer.train_step(x, tf.constant([1, i], tf.int64))
    float(out["elbo"])
    seconds = (time.perf_counter() - t0) / steps
    trainer.step.assign(0)
    return seconds


def timed_epoch(trainer: Trainer, epoch: int) -> dict:
    """Wall seconds of one epoch and its parts (from the run's metrics.jsonl row), and the
    process's CPU seconds (all threads): the work done, which a stall of the (virtual)
    machine does not inflate."""
    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(sys.stderr):  # the epoch's console line: stdout is the JSON
        row = trainer.run_epoch(epoch)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": wall, "cpu_seconds": cpu, "training": row["seconds_training"], "refit": row["refit_seconds"],
            "evaluation": row["epoch_seconds"] - row["seconds_training"] - row["refit_seconds"],
            "outputs_and_checkpoint": wall - row["epoch_seconds"]}


def periodic_refit_seconds(trainer: Trainer) -> float:
    """Extra seconds of the end-of-epoch refit at an ``accurate_fit`` epoch over a plain one."""
    cfg = trainer.cfg
    plain = next((e for e in range(cfg.accurate_fit + 1, cfg.accurate_fit + 4)
                  if e % cfg.accurate_fit and e != cfg.num_epochs), None)  # neither periodic nor last
    if plain is None:  # accurate_fit = 1: every epoch refits accurately, none is extra
        return 0.0
    times = []
    for epoch in (plain, cfg.accurate_fit):
        t0 = time.perf_counter()
        trainer.prior.end_of_epoch(trainer.sample_training_z, epoch)
        times.append(time.perf_counter() - t0)
    return max(times[1] - times[0], 0.0)


def parser() -> argparse.ArgumentParser:
    """This script's command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/mnist_fashion.json")
    p.add_argument("--priors", default="normal,ladder,ladder:fused",
                   help="comma-separated priors, each optionally :sequential or :fused; "
                   "ratios are against the first")
    p.add_argument("--train-size", type=int, default=60000)
    p.add_argument("--steps", type=int, default=30, help="timed steps for the step figure")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per prior (interleaved)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return p


def main() -> None:
    args = parser().parse_args()
    cfg = config_lib.load(args.config, args.set)
    data = load_dataset(cfg.exp_name, allow_download=False, train_size=args.train_size)
    priors = args.priors.split(",")
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {name: make_trainer(name, args, data, os.path.join(tmp, name)) for name in priors}
        steps = {name: step_seconds(trainers[name], data, args.steps) for name in priors}
        epochs: dict[str, list] = {name: [] for name in priors}
        for epoch in range(1, args.epochs + 1):
            for name in priors:
                epochs[name].append(timed_epoch(trainers[name], epoch))
        periodic = {name: periodic_refit_seconds(trainers[name]) for name in priors}
    results = []
    for name in priors:
        cfg_p, rows = trainers[name].cfg, epochs[name]
        median = statistics.median(r["seconds"] for r in rows)
        cpu_median = statistics.median(r["cpu_seconds"] for r in rows)
        results.append({
            "prior": name, "block_update": cfg_p.block_update, "batch_size": cfg_p.batch_size, "steps_per_epoch": trainers[name].steps_per_epoch,
            "step_seconds": steps[name], "step_images_per_second": cfg_p.batch_size / steps[name],
            "epochs": rows, "epoch_seconds_median": median, "epoch_cpu_seconds_median": cpu_median,
            "epoch_images_per_second": trainers[name].steps_per_epoch * cfg_p.batch_size / median,
            "periodic_refit_extra_seconds": periodic[name],
            "epoch_seconds_amortised": median + periodic[name] / cfg_p.accurate_fit})
    base = results[0]
    for r in results:
        r["step_time_ratio"] = r["step_seconds"] / base["step_seconds"]
        r["epoch_time_ratio_median"] = r["epoch_seconds_median"] / base["epoch_seconds_median"]
        r["epoch_cpu_time_ratio_median"] = r["epoch_cpu_seconds_median"] / base["epoch_cpu_seconds_median"]
        r["epoch_time_ratio_amortised"] = r["epoch_seconds_amortised"] / base["epoch_seconds_amortised"]
        r["epoch_time_ratio_per_epoch"] = [a["seconds"] / b["seconds"] for a, b in zip(r["epochs"], base["epochs"])]
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    print(json.dumps({"benchmark": "train_throughput", "config": args.config, "ratios_vs": base["prior"],
                      "train_size": len(data.x_train), "devices": devices,
                      "gpu": bool(tf.config.list_physical_devices("GPU")),
                      "cpu_count": os.cpu_count(), "machine": platform.machine(),
                      "load_average_start": load_start, "load_average_end": os.getloadavg(),
                      "tensorflow": tf.__version__, "results": results}, indent=2))


if __name__ == "__main__":
    main()
