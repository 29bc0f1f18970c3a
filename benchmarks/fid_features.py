#!/usr/bin/env python
"""FID feature extraction: images per second and peak memory, printed as JSON.

    python benchmarks/fid_features.py [--n 10000] [--cache-dir experiments]

Classifier features always (the cached classifier of --dataset if there is one, else an
untrained network of the same shape: the speed is the same). Inception features only
when ImageNet weights are found (--inception-weights or Keras's cache). Memory is the
process's peak resident set (ru_maxrss) before and after streaming N images; the images
are made one batch at a time, as evaluate.py does, so the increment should not grow with
N (a second pass with 5N images checks that).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def image_batches(source: np.ndarray, n: int, batch: int):
    """n images in [0, 1], cycling through ``source`` (uint8), one float batch at a time."""
    for start in range(0, n, batch):
        idx = np.arange(start, min(start + batch, n)) % len(source)
        yield source[idx].astype(np.float32) / 255.0


def measure(extractor, source: np.ndarray, n: int) -> dict:
    from ladder_tf.evaluation.features import accumulate_stats

    accumulate_stats(extractor, image_batches(source, extractor.batch_size, extractor.batch_size),
                     progress=False)  # warm-up: tracing
    before = peak_rss_mb()
    t0 = time.perf_counter()
    stats = accumulate_stats(extractor, image_batches(source, n, extractor.batch_size), progress=False)
    seconds = time.perf_counter() - t0
    return {"n_images": n, "batch_size": extractor.batch_size, "seconds": round(seconds, 3),
            "images_per_second": round(n / seconds, 1), "peak_rss_mb_before": round(before, 1),
            "peak_rss_mb_after": round(peak_rss_mb(), 1),
            "peak_rss_increase_mb": round(peak_rss_mb() - before, 1), "feature_dim": int(stats.mean.size)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--dataset", default="mnist_fashion")
    p.add_argument("--data-dir")
    p.add_argument("--cache-dir", default="experiments")
    p.add_argument("--inception-weights")
    p.add_argument("--protocol", default="paper", choices=("paper", "standard"))
    args = p.parse_args()

    import tensorflow as tf

    from ladder_tf.data import load_dataset
    from ladder_tf.evaluation import classifier as clf_lib
    from ladder_tf.evaluation.features import (ClassifierFeatures, InceptionFeatures,
                                               WeightsNotFoundError, find_inception_weights)

    data = load_dataset(args.dataset, args.data_dir, allow_download=False)
    source = data.x_test
    out = {"benchmark": "fid_features", "python": platform.python_version(), "tensorflow": tf.__version__,
           "cpu_count": os.cpu_count(), "gpus": len(tf.config.list_physical_devices("GPU")),
           "materialising_all_at_299x299x3_float32_would_need_gb":
               round(args.n * 299 * 299 * 3 * 4 / 1e9, 2)}
    clf_dir = clf_lib.classifier_dir(args.dataset, os.path.join(args.cache_dir, "_classifiers"))
    clf = clf_lib.load_classifier(clf_dir)
    if clf is None:
        model, feats = clf_lib.build_classifier(tuple(source.shape[1:]))
        clf = clf_lib.Classifier(model, feats, {"test_accuracy": float("nan")})
    ext = ClassifierFeatures(clf, args.dataset)
    out["classifier"] = {"trained": clf.weights_path is not None, **measure(ext, source, args.n)}
    out["classifier_5n"] = measure(ext, source, 5 * args.n)
    try:
        weights = find_inception_weights(args.inception_weights)
    except WeightsNotFoundError as err:
        out["inception"] = {"skipped": str(err)}
    else:
        ext = InceptionFeatures(weights, args.protocol)
        out["inception"] = {"protocol": args.protocol, **measure(ext, source, args.n)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
