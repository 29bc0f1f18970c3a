"""Evaluate trained runs: FID in the layout of the paper's Table 1, and log p(x).

    ladder evaluate experiments/mnist_fashion/normal experiments/mnist_fashion/ladder \\
        --features classifier --metrics fid,nll

FID networks (--features): ``fid-inception``, the standard FID network (the 2015-12-05
Inception weights of TTUR / pytorch-fid / clean-fid, converted once with
``ladder fid-weights``; the default when converted); ``inception``,
Keras's ImageNet InceptionV3 under the authors' protocol (weights supplied by the user);
``classifier``, the project's own classifier (a scale of its own).
"""
from __future__ import annotations

import argparse
import os
import sys

from ladder_tf.commands.common import add_data_flags, error_text, fail, new_parser, quiet_tensorflow
from ladder_tf.workflows.evaluate import FEATURES, METRICS, EvaluationSettings


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
                   "`ladder fid-weights`)")
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
    p.add_argument("--out", help="output path: writes PATH.json and PATH.md (default: "
                   "RUN_DIR/evaluation-<features> for one run, ./evaluation for several)")
    p.add_argument("--seed", type=int, default=0, help="seed of every sample and subset")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_data_flags(p, run=True)
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


def settings_from_args(args: argparse.Namespace, metrics: list[str]) -> EvaluationSettings:
    """The workflow's settings from the parsed flags."""
    return EvaluationSettings(
        metrics=metrics, features=args.features, fid_weights=args.fid_weights,
        inception_weights=args.inception_weights, fid_protocol=args.fid_protocol,
        num_samples=args.num_samples, repeats=args.repeats, reference_size=args.reference_size,
        reconstruction=args.reconstruction, save_stats=args.save_stats, cache_dir=args.cache_dir,
        nll_samples=args.nll_samples, nll_images=args.nll_images,
        nll_prior_samples=args.nll_prior_samples, data_dir=args.data_dir,
        allow_download=not args.no_download, seed=args.seed, progress=not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    metrics = check_args(args)
    for path in args.runs:  # cheap checks before TensorFlow starts
        if not any(os.path.isfile(os.path.join(path, f)) for f in ("config.json", "saved_model.pb")):
            fail(f"{path} is not a run directory: it has no config.json (nor saved_model.pb)"
                 if os.path.isdir(path) else f"{path}: no such run directory")
    quiet_tensorflow(args.verbose)

    from ladder_tf.locks import RunLockedError
    from ladder_tf.workflows.evaluate import EvaluationError, evaluate_to_files, markdown

    command = "ladder evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        result, json_path, md_path = evaluate_to_files(args.runs, settings_from_args(args, metrics),
                                                       args.out, command)
    except (EvaluationError, RunLockedError) as err:
        fail(str(err))
    except OSError as err:  # an unwritable output path, unreadable inputs
        fail(error_text(err))
    except KeyboardInterrupt:
        fail("interrupted; re-run the same command: finished FID sets are cached", status=130)
    print(markdown(result))
    print(f"wrote {json_path} and {md_path} ({result['seconds']:.0f} s)")
    return 0
