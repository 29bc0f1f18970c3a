"""Evaluate trained runs: FID in the layout of the paper's Table 1, and log p(x).

    ladder evaluate experiments/mnist_fashion/normal experiments/mnist_fashion/ladder \\
        --features classifier --metrics fid,nll
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ladder_tf.cli import error_text, fail, new_parser, quiet_tensorflow

METRICS = ("fid", "nll")


def parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (config.json + "
                   "checkpoints/) or SavedModel exports (FID only)")
    p.add_argument("--metrics", default="fid", help="comma-separated: fid, nll")
    p.add_argument("--num-samples", type=int, default=10000,
                   help="images per FID set (generated; test images are capped at the test split)")
    p.add_argument("--repeats", type=int, default=5, help="FID repeats, each with fresh samples")
    p.add_argument("--features", choices=("inception", "classifier"), default="inception",
                   help="FID feature network: Keras InceptionV3 (ImageNet weights, needed offline: "
                   "see --inception-weights) or the project's own classifier (offline; its "
                   "classifier-FID is not comparable with the paper's numbers)")
    p.add_argument("--inception-weights", metavar="PATH",
                   help="InceptionV3 weights .h5 (default: Keras's cache, ~/.keras/models/)")
    p.add_argument("--fid-protocol", choices=("paper", "standard"), default="paper",
                   help="paper: the authors' preprocessing (resize 64 then 140, input 140x140); "
                   "standard: 299x299 bilinear")
    p.add_argument("--cache-dir", default="experiments",
                   help="where the classifier (_classifiers/<dataset>/) and the reference "
                   "statistics (_fid_stats/) are cached")
    p.add_argument("--nll-samples", type=int, default=1000, help="k, importance samples of q(z|x) per image")
    p.add_argument("--nll-images", type=int, default=1000, help="test images for log p(x) (the first N)")
    p.add_argument("--nll-prior-samples", type=int, default=100,
                   help="samples of q(t|z) per z for priors whose log p(z) is itself estimated")
    p.add_argument("--data-dir", help="local data: IDX files or a Keras-style .npz")
    p.add_argument("--no-download", action="store_true", help="never try a TensorFlow Datasets download")
    p.add_argument("--out", help="output path: writes PATH.json and PATH.md (default: RUN_DIR/evaluation "
                   "for one run, ./evaluation for several)")
    p.add_argument("--seed", type=int, default=0, help="seed of every sample and subset")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def check_args(args: argparse.Namespace) -> list[str]:
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        fail(f"--metrics {args.metrics!r}: choose from {', '.join(METRICS)} (comma-separated)")
    for flag, value, low in (("--num-samples", args.num_samples, 2), ("--repeats", args.repeats, 1),
                             ("--nll-samples", args.nll_samples, 1), ("--nll-images", args.nll_images, 1),
                             ("--nll-prior-samples", args.nll_prior_samples, 1)):
        if value < low:
            fail(f"{flag} must be at least {low}, got {value}")
    return metrics


def load_models(paths: list[str]) -> list:
    from ladder_tf.evaluation import ModelLoadError, load_model
    from ladder_tf.runs import RunNotFoundError

    models = []
    for path in paths:
        try:
            models.append(load_model(path))
        except (RunNotFoundError, ModelLoadError) as err:
            fail(str(err))
    return models


def load_data(models: list, args: argparse.Namespace) -> dict:
    from ladder_tf.data import DataNotFoundError, load_dataset

    data = {}
    for m in models:
        name = m.config.exp_name
        if name not in data:
            try:
                data[name] = load_dataset(name, args.data_dir, allow_download=not args.no_download)
            except (DataNotFoundError, ValueError) as err:
                fail(str(err))
    return data


def make_extractor(args: argparse.Namespace, dataset: str, data, weights: str | None, cache: dict):
    from ladder_tf.evaluation.features import ClassifierFeatures, InceptionFeatures

    key = "inception" if args.features == "inception" else dataset
    if key not in cache:
        if args.features == "inception":
            try:
                ext = InceptionFeatures(weights, args.fid_protocol)
            except (OSError, ValueError) as err:
                fail(f"{weights}: cannot load InceptionV3 weights from it ({str(err).splitlines()[0]})")
            if not ext.weights_are_official:
                print(f"warning: {weights} is not the file Keras publishes (md5 {ext.weights_md5})",
                      file=sys.stderr)
        else:
            from ladder_tf.evaluation.classifier import get_classifier

            clf = get_classifier(dataset, data, os.path.join(args.cache_dir, "_classifiers"),
                                 progress=True)  # a few lines, not a bar: always shown
            ext = ClassifierFeatures(clf, dataset)
        cache[key] = ext
    return cache[key]


def run_fid(models, columns, data, args, weights, result) -> None:
    import hashlib

    import numpy as np

    from ladder_tf.evaluation import fid as fid_lib

    progress, extractors = not args.no_progress, {}
    for dataset in dict.fromkeys(m.config.exp_name for m in models):
        d = data[dataset]
        ext = make_extractor(args, dataset, d, weights, extractors)
        data_id = hashlib.sha1(np.ascontiguousarray(d.x_train).tobytes()).hexdigest()[:10]
        cache = os.path.join(args.cache_dir, "_fid_stats", f"{dataset}-{ext.fingerprint}-{data_id}.npz")
        reference = fid_lib.reference_stats(ext, d.x_train, cache, progress)
        real = fid_lib.real_fids(ext, d.x_test, reference, args.num_samples, args.repeats, args.seed,
                                 progress)
        for m, col in zip(models, columns):
            if m.config.exp_name == dataset:
                values = fid_lib.model_fids(m, ext, d.x_test, reference, args.num_samples,
                                            args.repeats, args.seed, progress)
                col["fid"] = fid_lib.fid_rows(values["generation"], values["reconstruction"], real)
        info = {"features": ext.name, "label": ext.label, "fingerprint": ext.fingerprint,
                "reference_n": len(d.x_train), "num_test": min(args.num_samples, len(d.x_test))}
        if args.features == "inception":
            info.update(weights_path=weights, weights_md5=ext.weights_md5, protocol=args.fid_protocol)
        else:
            info["classifier"] = ext.classifier.info
        result["fid"].setdefault("per_dataset", {})[dataset] = info
        result["fid"].update({k: info[k] for k in ("label", "reference_n", "num_test")})


def run_nll(models, columns, data, args, result) -> None:
    from ladder_tf.evaluation.nll import NLLUnsupportedError, model_log_px, summarise_log_px

    for m, col in zip(models, columns):
        x = data[m.config.exp_name].x_test[:args.nll_images]
        try:
            out = model_log_px(m, x, args.nll_samples, args.seed, args.nll_prior_samples,
                               progress=not args.no_progress)
        except NLLUnsupportedError as err:
            print(f"warning: {err}", file=sys.stderr)
            col["nll"] = {"unsupported": str(err)}
            continue
        col["nll"] = {**summarise_log_px(out["log_px"], int(x[0].size)),
                      "prior_density": out["prior_density"]}
    result["nll"] = {"n_images": min(args.nll_images, min(len(d.x_test) for d in data.values())),
                     "n_samples": args.nll_samples, "prior_samples": args.nll_prior_samples}


def evaluate(args: argparse.Namespace, metrics: list[str], weights: str | None,
             argv: list[str] | None) -> dict:
    """Load the models and data, compute the metrics; returns the result record."""
    from ladder_tf.evaluation.report import column_names

    t0 = time.perf_counter()
    models = load_models(args.runs)
    data = load_data(models, args)
    names = column_names([m.name for m in models], args.runs)
    columns = [{"column": c, "run_dir": p, "prior": m.name, "dataset": m.config.exp_name,
                "checkpoint": getattr(m, "checkpoint", None)} for c, p, m in zip(names, args.runs, models)]
    result = {"command": "ladder evaluate " + " ".join(argv if argv is not None else sys.argv[1:]),
              "metrics": metrics, "seed": args.seed, "columns": columns}
    try:
        if "fid" in metrics:
            result["fid"] = {"features": args.features, "num_samples": args.num_samples,
                             "repeats": args.repeats}
            run_fid(models, columns, data, args, weights, result)
        if "nll" in metrics:
            run_nll(models, columns, data, args, result)
    except KeyboardInterrupt:
        fail("interrupted", status=130)
    result["seconds"] = time.perf_counter() - t0
    return result


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    metrics = check_args(args)
    for path in args.runs:  # cheap checks before TensorFlow starts
        if not any(os.path.isfile(os.path.join(path, f)) for f in ("config.json", "saved_model.pb")):
            fail(f"{path} is not a run directory: it has no config.json (nor saved_model.pb)"
                 if os.path.isdir(path) else f"{path}: no such run directory")
    quiet_tensorflow(args.verbose)
    weights = None
    if "fid" in metrics and args.features == "inception":
        from ladder_tf.evaluation.features import WeightsNotFoundError, find_inception_weights
        try:
            weights = find_inception_weights(args.inception_weights)
        except WeightsNotFoundError as err:
            fail(str(err))

    from ladder_tf.evaluation.report import markdown, output_paths, write_report
    from ladder_tf.locks import RunLockedError, locked

    out = args.out or (os.path.join(args.runs[0], "evaluation") if len(args.runs) == 1 else "evaluation")
    lock_path = os.path.splitext(output_paths(out)[0])[0] + ".lock"
    try:  # one evaluation at a time writes these outputs; taken before any computing
        with locked(lock_path, "evaluation"):
            result = evaluate(args, metrics, weights, argv)
            json_path, md_path = write_report(result, out)
    except RunLockedError as err:
        fail(str(err))
    except OSError as err:  # an unwritable output path, unreadable inputs
        fail(error_text(err))
    print(markdown(result))
    print(f"wrote {json_path} and {md_path} ({result['seconds']:.0f} s)")
    return 0

