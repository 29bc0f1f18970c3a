#!/usr/bin/env python
"""FID feature extraction speed, printed as JSON: the FID Inception port against plain
Keras InceptionV3 inference and a large float32 matmul, all in the same run.

    python benchmarks/fid_features.py [--n 200] [--batch 50] [--rounds 2] [--jit]

Every timing is the best of ``--rounds`` rounds that run the matmul and the networks in
turn, so that a change of machine load hits them alike.

Sections:
- ``matmul_4096_float32_gflops``: GFLOP/s of a 4096x4096 float32 matmul (2 * 4096^3 FLOP each), the
  machine's practical peak for dense float32 work in this process.
- ``fid_inception_fused`` / ``_unfused``: the port (``fid_inception.build_fid_inception``;
  needs the converted weights: ``ladder fid-weights``), network
  only on 299x299x3 inputs, with fused 1x1 convolutions (the default) and without
  (``--jit``: also with XLA); ``fid_inception_extractor_28x28_grey``: the whole extractor
  (28x28 grey uint8 images -> TTUR preprocessing -> features -> streaming statistics).
- ``keras_inception_v3``: ``keras.applications.InceptionV3(weights=None, include_top=False,
  pooling='avg')`` at 299x299, network only (random weights: same cost).
- ``classifier``: the project's classifier features, with peak memory for N and 5N
  images (the images are made one batch at a time: the increment must not grow with N).
GFLOP/s = convolution FLOP per image (2 * output pixels * kh * kw * c_in * c_out, summed
over the Conv2D layers; pools, adds and batch norms not counted) * images/s.
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


def conv_flops(model) -> int:
    """FLOP per image of the model's Conv2D layers (multiply + add = 2)."""
    import tf_keras as keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output_shape
            total += 2 * h * w * kh * kw * cin * cout
    return int(total)


def timed(fn, work: float) -> float:
    """work / seconds of one call of ``fn``."""
    t0 = time.perf_counter()
    fn()
    return work / (time.perf_counter() - t0)


def matmul_job(size: int = 4096):
    """(run, GFLOP per run) of a size x size float32 matmul."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    step = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    return (lambda: [step().numpy() for _ in range(3)]), 3 * 2.0 * size ** 3 / 1e9


def network_job(model, n: int, batch: int, jit: bool = False):
    """(run, images per run) of ``model`` on random 299x299x3 inputs, n images per run."""
    import tensorflow as tf

    x = tf.random.uniform((batch, 299, 299, 3), -1.0, 1.0)
    step = tf.function(lambda v: model(v, training=False), jit_compile=jit)
    steps = max(1, n // batch)
    return (lambda: [step(x).numpy() for _ in range(steps)]), steps * batch


def interleaved_best(jobs: dict, rounds: int) -> dict:
    """Best rate of each job over ``rounds`` rounds that run every job once in turn (after a
    warm-up call each), so that a change of machine load hits all of them alike."""
    for run, _ in jobs.values():
        run()
    best = dict.fromkeys(jobs, 0.0)
    for _ in range(rounds):
        for name, (run, work) in jobs.items():
            best[name] = max(best[name], timed(run, work))
    return best


def image_batches(source: np.ndarray, n: int, batch: int):
    """n images cycling through ``source`` (uint8), one batch at a time."""
    for start in range(0, n, batch):
        yield source[np.arange(start, min(start + batch, n)) % len(source)]


def extractor_rate(extractor, source: np.ndarray, n: int) -> dict:
    from ladder_tf.evaluation.features import accumulate_stats

    accumulate_stats(extractor, image_batches(source, extractor.batch_size, extractor.batch_size),
                     progress=False)  # warm-up: tracing
    before = peak_rss_mb()
    t0 = time.perf_counter()
    stats = accumulate_stats(extractor, image_batches(source, n, extractor.batch_size), progress=False)
    seconds = time.perf_counter() - t0
    return {"n_images": n, "batch_size": extractor.batch_size, "seconds": round(seconds, 3),
            "images_per_second": round(n / seconds, 2), "peak_rss_mb_before": round(before, 1),
            "peak_rss_increase_mb": round(peak_rss_mb() - before, 1), "feature_dim": int(stats.mean.size)}


def parser() -> argparse.ArgumentParser:
    """This script's command line."""
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="images per network timing")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--classifier-n", type=int, default=10000)
    p.add_argument("--dataset", default="mnist_fashion")
    p.add_argument("--data-dir")
    p.add_argument("--cache-dir", default="experiments")
    p.add_argument("--fid-weights", help="converted weights (.npz); default: the cache")
    p.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds (best kept)")
    p.add_argument("--jit", action="store_true", help="also time the port with jit_compile=True")
    return p


def main() -> int:
    args = parser().parse_args()

    import tensorflow as tf
    import tf_keras as keras

    from ladder_tf.data import load_dataset
    from ladder_tf.evaluation import classifier as clf_lib
    from ladder_tf.evaluation.features import ClassifierFeatures
    from ladder_tf.evaluation.fid_inception import FIDInceptionFeatures, build_fid_inception
    from ladder_tf.evaluation.fid_weights import SOURCE_SHA1, find_fid_weights, load_params

    out = {"benchmark": "fid_features", "python": platform.python_version(), "tensorflow": tf.__version__,
           "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg(),
           "gpus": len(tf.config.list_physical_devices("GPU"))}
    weights = find_fid_weights(args.fid_weights)
    if weights is None:
        print("error: no converted FID weights: run `ladder fid-weights`",
              file=sys.stderr)
        return 2
    params = load_params(weights)
    plain = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(299, 299, 3),
                                           pooling="avg")
    models = {"fid_inception_fused": build_fid_inception(params, fuse=True),
              "fid_inception_unfused": build_fid_inception(params, fuse=False),
              "keras_inception_v3": plain}
    jobs = {"matmul_4096_float32": matmul_job()}
    jobs.update({k: network_job(m, args.n, args.batch) for k, m in models.items()})
    if args.jit:
        jobs["fid_inception_fused_jit"] = network_job(models["fid_inception_fused"], args.n, args.batch, True)
    best = interleaved_best(jobs, args.rounds)
    out["matmul_4096_float32_gflops"] = round(best.pop("matmul_4096_float32"), 1)
    for name, ips in best.items():
        gflop = conv_flops(models[name.replace("_jit", "")]) / 1e9
        out[name] = {"batch": args.batch, "images_per_second": round(ips, 2), "gflop_per_image": round(gflop, 3),
                     "gflops": round(ips * gflop, 1),
                     "fraction_of_matmul": round(ips * gflop / out["matmul_4096_float32_gflops"], 3)}
    data = load_dataset(args.dataset, args.data_dir, allow_download=False)
    ext = FIDInceptionFeatures(params, SOURCE_SHA1, batch_size=args.batch)
    out["fid_inception_extractor_28x28_grey"] = extractor_rate(ext, data.x_test, args.n)

    clf_dir = clf_lib.classifier_dir(args.dataset, os.path.join(args.cache_dir, "_classifiers"),
                                     clf_lib.data_key(data, clf_lib.N_CLASSES))
    clf = clf_lib.load_classifier(clf_dir)
    if clf is None:
        model, feats = clf_lib.build_classifier(tuple(data.x_test.shape[1:]))
        clf = clf_lib.Classifier(model, feats, {"test_accuracy": float("nan")})
    cext = ClassifierFeatures(clf, args.dataset)
    out["classifier"] = {"trained": clf.weights_path is not None,
                         **extractor_rate(cext, data.x_test, args.classifier_n)}
    out["classifier_5n"] = extractor_rate(cext, data.x_test, 5 * args.classifier_n)
    out["load_average_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
