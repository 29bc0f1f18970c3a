"""Interpolate between two test images along the SP and the SLP (ladder_tf.model.interpolation).

    ladder interpolate MODEL --start I --end J --steps N --out DIR

MODEL is a run directory (config.json + checkpoints/) or an exported SavedModel; I and J
index the test split of the model's data set. Writes to DIR:

- ``slp_sp_strip.png``: the decoded SLP (top) and SP (bottom), end images included
  (the supplementary's Figures 6 and 7);
- ``slp_losses.png``: the SLP's total loss, length, equal-length term and -log-likelihood
  per iteration;
- ``path_density_2d.png`` when the path space is 2-D: both paths over the prior density
  and the embeddings of the first test images;
- ``interpolation.json``: settings and, per method, path length and log p along the path;
- ``paths.npz``: both full paths (ends included) and their decoded images.
"""
from __future__ import annotations

import argparse
import math
import os

from ladder_tf.commands.common import add_data_flags, error_text, fail, new_parser, quiet_tensorflow
from ladder_tf.data import DataNotFoundError
from ladder_tf.model.interpolation import SLPSettings
from ladder_tf.workflows.interpolate import interpolate
from ladder_tf.workflows.trained import ModelLoadError, RunNotFoundError


def parser() -> argparse.ArgumentParser:
    """The ``ladder interpolate`` arguments."""
    d = SLPSettings()
    p = new_parser(__doc__)
    p.add_argument("model", metavar="MODEL", help="run directory or exported SavedModel directory")
    what = p.add_argument_group("the two images and the outputs")
    what.add_argument("--start", type=int, required=True, metavar="I",
                      help="test-set index of the first image")
    what.add_argument("--end", type=int, required=True, metavar="J",
                      help="test-set index of the last image")
    what.add_argument("--steps", type=int, default=d.n_step, metavar="N",
                      help="intermediate points (n_step)")
    what.add_argument("--out", required=True, metavar="DIR", help="output directory")
    what.add_argument("--seed", type=int, default=0, help="seed of the z sample behind LaDDer's t end points")
    add_data_flags(p, run=True)
    slp = p.add_argument_group("shortest likely path optimisation")
    slp.add_argument("--w-path", type=float, default=d.w_path, help="weight of the path length")
    slp.add_argument("--w-equal", type=float, default=d.w_equal, help="weight of the segment-length std")
    slp.add_argument("--lr", type=float, default=d.learning_rate, help="Adam learning rate")
    slp.add_argument("--beta1", type=float, default=d.beta1, help="Adam beta1")
    slp.add_argument("--beta2", type=float, default=d.beta2, help="Adam beta2")
    slp.add_argument("--epsilon", type=float, default=d.epsilon, help="Adam epsilon")
    slp.add_argument("--clip", type=float, default=d.clip, help="element-wise gradient clip (0: none)")
    slp.add_argument("--iterations", type=int, default=d.iterations, help="Adam steps")
    return p


# flag -> (test of a finite value, what is allowed)
NUMBER_FLAGS = {"lr": (lambda v: v > 0, "> 0"), "w_path": (lambda v: v >= 0, ">= 0"),
                "w_equal": (lambda v: v >= 0, ">= 0"), "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
                "beta2": (lambda v: 0 <= v < 1, "in [0, 1)"), "epsilon": (lambda v: v > 0, "> 0"),
                "clip": (lambda v: v >= 0, ">= 0 (0: no clipping)")}


def check_args(args: argparse.Namespace) -> None:
    """Every mistake that needs no model or data: one error line, exit 2, before computing."""
    if args.steps < 1 or args.iterations < 1:
        fail("--steps and --iterations must be at least 1")
    if args.start == args.end:
        fail(f"--start and --end are both {args.start}: a path needs two different test images")
    for key, (ok, allowed) in NUMBER_FLAGS.items():
        value = getattr(args, key)
        if not math.isfinite(value) or not ok(value):
            fail(f"--{key.replace('_', '-')} must be a finite number {allowed}, got {value}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        fail(f"--out {args.out} is an existing file; give a directory (new or existing)")


def main(argv: list[str] | None = None) -> int:
    """`ladder interpolate`: returns the exit status (2 for a usage mistake or unusable input)."""
    args = parser().parse_args(argv)
    check_args(args)
    quiet_tensorflow(args.verbose)
    settings = SLPSettings(n_step=args.steps, w_path=args.w_path, w_equal=args.w_equal,
                           learning_rate=args.lr, beta1=args.beta1, beta2=args.beta2,
                           epsilon=args.epsilon, clip=args.clip, iterations=args.iterations)
    try:
        summary = interpolate(args.model, args.start, args.end, args.out, settings, args.seed,
                              args.data_dir, allow_download=not args.no_download)
    except (RunNotFoundError, ModelLoadError, DataNotFoundError, ValueError,
            NotImplementedError) as err:
        fail(str(err))
    except OSError as err:  # an unwritable --out, a SavedModel that is not an export
        fail(error_text(err))
    for name, s in summary["methods"].items():
        print(f"{name}: length {s['path_length']:.3f}, log p min {s['log_p_min']:.2f} "
              f"mean {s['log_p_mean']:.2f} (dense min {s['log_p_dense_min']:.2f})")
    print(f"outputs in {args.out}: {', '.join(summary['figures'])}, interpolation.json, paths.npz")
    return 0
