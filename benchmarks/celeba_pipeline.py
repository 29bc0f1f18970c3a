"""CelebA input pipeline against the training step, in images per second, printed as JSON.

Generates (once) a folder of synthetic 178x218 JPEGs of CelebA-like size, then measures:
- the uncached pipeline (read, decode, resize, batch) over one training epoch;
- building the on-disk cache, and the cached pipeline over one epoch;
- the compiled training step alone (data VAE + prior step) on a fixed batch.
The input pipeline keeps up with training when its images/s exceed the step's.

    python benchmarks/celeba_pipeline.py --n-images 2000 --set num_hidden_units=64 --set batch_size=64
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]  # this checkout's ladder_tf; tests/synthetic.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ladder_tf import config as config_lib  # noqa: E402
from ladder_tf.data import load_dataset, train_batches  # noqa: E402
from ladder_tf.workflows.training import Trainer  # noqa: E402
from synthetic import write_synthetic_folder  # noqa: E402


def pipeline_rate(images, batch_size: int, epoch: int) -> dict:
    """Images/s over one epoch of ``train_batches`` (first batch excluded: start-up)."""
    it = iter(train_batches(images, batch_size, seed=0, epoch=epoch))
    t_first = time.perf_counter()
    next(it)
    t0 = time.perf_counter()
    n = sum(int(x.shape[0]) for x in it)
    seconds = time.perf_counter() - t0
    return {"images": n, "seconds": seconds, "images_per_second": n / max(seconds, 1e-9),
            "first_batch_seconds": t0 - t_first}


def step_rate(cfg, data, steps: int) -> dict:
    """Images/s of the compiled training step on one fixed batch (after 3 warm-up steps)."""
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, data, run_dir, show_progress=False)
        trainer.restore()
        trainer.begin_epoch(max(cfg.sg_pretraining, 1))  # the prior's own step is on
        x = next(iter(train_batches(data.x_train, cfg.batch_size, seed=0, epoch=1)))
        t_trace = time.perf_counter()
        for i in range(3):
            float(trainer.train_step(x, tf.constant([0, i], tf.int64))["elbo"])
        warmup = time.perf_counter() - t_trace
        t0 = time.perf_counter()
        for i in range(steps):
            out = trainer.train_step(x, tf.constant([1, i], tf.int64))
        float(out["elbo"])
        seconds = (time.perf_counter() - t0) / steps
    return {"step_seconds": seconds, "images_per_second": cfg.batch_size / seconds,
            "warmup_seconds_3_steps": warmup}


def parser() -> argparse.ArgumentParser:
    """This script's command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", help="synthetic JPEG folder (created when missing); default: a temp dir")
    p.add_argument("--n-images", type=int, default=2000)
    p.add_argument("--config", default="configs/celeba.json")
    p.add_argument("--prior", default="normal")
    p.add_argument("--steps", type=int, default=10, help="timed training steps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return p


def main() -> None:
    args = parser().parse_args()
    cfg = config_lib.load(args.config, args.set, prior=args.prior)
    work = tempfile.mkdtemp(prefix="celeba_bench_")
    folder = args.folder or os.path.join(work, "img_align_celeba")
    try:
        t0 = time.perf_counter()
        if len(os.listdir(folder) if os.path.isdir(folder) else []) < args.n_images:
            write_synthetic_folder(folder, args.n_images, sizes=((218, 178),))
        generate_s = time.perf_counter() - t0
        test_size = min(cfg.test_size, args.n_images // 10)
        plain = load_dataset("celeba", folder, test_size=test_size, cfg=cfg)
        uncached = pipeline_rate(plain.x_train, cfg.batch_size, epoch=1)
        t0 = time.perf_counter()
        cached_data = load_dataset("celeba", folder, test_size=test_size, cfg=cfg,
                                   cache_dir=os.path.join(work, "cache"))
        build_s = time.perf_counter() - t0
        cached = pipeline_rate(cached_data.x_train, cfg.batch_size, epoch=2)
        cached_again = pipeline_rate(cached_data.x_train, cfg.batch_size, epoch=3)  # warm page cache
        step = step_rate(cfg, cached_data, args.steps)
        sizes = [os.path.getsize(os.path.join(folder, f)) for f in sorted(os.listdir(folder))[:200]]
        print(json.dumps({
            "benchmark": "celeba_pipeline", "n_images": args.n_images, "train_images": len(plain.x_train),
            "jpeg_mean_bytes": float(np.mean(sizes)), "generate_seconds": generate_s,
            "batch_size": cfg.batch_size, "num_hidden_units": cfg.num_hidden_units,
            "code_size": cfg.code_size, "prior": cfg.prior, "celeba_network": cfg.celeba_network,
            "celeba_crop": cfg.celeba_crop, "mixed_precision": cfg.mixed_precision,
            "pipeline_uncached": uncached, "cache_build_seconds": build_s,
            "cache_build_images_per_second": args.n_images / build_s,
            "pipeline_cached": cached, "pipeline_cached_second_pass": cached_again,
            "train_step": step,
            "pipeline_over_step_uncached": uncached["images_per_second"] / step["images_per_second"],
            "pipeline_over_step_cached": cached_again["images_per_second"] / step["images_per_second"],
            "devices": [d.device_type for d in tf.config.list_physical_devices()],
            "gpu": [tf.config.experimental.get_device_details(g).get("device_name", "GPU")
                    for g in tf.config.list_physical_devices("GPU")],
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "tensorflow": tf.__version__,
        }, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
