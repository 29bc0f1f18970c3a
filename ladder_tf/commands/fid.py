"""`ladder fid` and `ladder fid-stats`: FID between any two image sets, with the standard FID
network offline; the work is ladder_tf.workflows.fid_files."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ladder_tf.commands.common import error_text, fail, new_parser, quiet_tensorflow
from ladder_tf.workflows.fid_files import FIDInputError, input_kind

INPUTS = """A and B are each a folder of images (searched recursively; PNG, JPEG, BMP or GIF, any
size, grey or colour), a .npz of uint8 images (N, H, W[, C]): its `images` array or its only
one, as `ladder sample` writes), or a statistics .npz in pytorch-fid's layout (mu, sigma).
Features: the standard FID network (the 2015-12-05 Inception weights of TTUR, pytorch-fid,
clean-fid and torch-fidelity, converted once by `ladder fid-weights`) with TTUR's
preprocessing (uint8 values, TensorFlow 1 bilinear resize to 299x299, grey repeated to RGB)."""
FID_HELP = f"""FID between two image sets.

    ladder fid real/ generated/                      # two folders
    ladder fid real_stats.npz samples.npz --json     # statistics file against uint8 images

{INPUTS}
"""
STATS_HELP = f"""Feature statistics of an image set, written once (pytorch-fid's mu/sigma layout).

    ladder fid-stats real/ --out real_stats.npz
    ladder fid real_stats.npz generated/

{INPUTS.replace("A and B are each", "A is")}
"""


def add_common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--batch-size, --fid-weights and --no-progress."""
    p.add_argument("--batch-size", type=int, default=50, metavar="N", help="images per network batch")
    p.add_argument("--fid-weights", metavar="PATH", help="converted FID Inception weights .npz (default: "
                   "$LADDER_FID_WEIGHTS or ~/.keras/models/; make them with `ladder fid-weights`)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def fid_parser() -> argparse.ArgumentParser:
    """The ``ladder fid`` arguments."""
    p = new_parser(FID_HELP)
    p.add_argument("a", metavar="A", help="folder, images .npz or statistics .npz")
    p.add_argument("b", metavar="B", help="folder, images .npz or statistics .npz")
    p.add_argument("--json", action="store_true", help="print a JSON object (the FID, and per set its "
                   "kind, number of images and skipped files) instead of one line")
    return add_common(p)


def stats_parser() -> argparse.ArgumentParser:
    """The ``ladder fid-stats`` arguments."""
    p = new_parser(STATS_HELP)
    p.add_argument("a", metavar="A", help="folder or images .npz")
    p.add_argument("--out", required=True, metavar="STATS.npz", help="where to write mu (2048,) and "
                   "sigma (2048, 2048), float64, atomically")
    return add_common(p)


def checked_kinds(args: argparse.Namespace, paths: list[str]) -> list[str]:
    """The kind of every input (before TensorFlow starts); exit 2 on a mistake."""
    if args.batch_size < 1:
        fail(f"--batch-size must be at least 1, got {args.batch_size}")
    try:
        return [input_kind(p) for p in paths]
    except FIDInputError as err:
        fail(str(err))


def compute(args: argparse.Namespace, paths: list[str], kinds: list[str]) -> list:
    """Every input's SetStats: all inputs are opened and checked before the network is built
    (only when an input needs it); exit 2 on a mistake, a warning line per folder with
    skipped files."""
    from ladder_tf.workflows.fid_files import load_extractor, open_input, set_stats, skipped_note

    if not all(k == "stats" for k in kinds):
        quiet_tensorflow(args.verbose)
    try:
        inputs = [open_input(p, k) for p, k in zip(paths, kinds)]
        extractor = None
        if not all(k == "stats" for k in kinds):
            extractor = load_extractor(args.fid_weights, args.batch_size)
            for inp in inputs:
                if inp.kind == "stats" and inp.stats.mean.size != extractor.dim:
                    raise FIDInputError(f"{inp.path}: statistics of {inp.stats.mean.size}-d features, but "
                                        f"the FID network's are {extractor.dim}-d")
        out = [set_stats(extractor, inp, not args.no_progress) for inp in inputs]
    except FIDInputError as err:
        fail(str(err))
    except OSError as err:
        fail(error_text(err))
    except KeyboardInterrupt:
        fail("interrupted", status=130)
    for s in out:
        note = skipped_note(s)
        if note:
            print(f"warning: {note}", file=sys.stderr)
    return out


def main_fid(argv: list[str] | None = None) -> int:
    """`ladder fid A B`: prints the FID; 2 for a usage mistake or an unusable input."""
    from ladder_tf.workflows.fid_files import fid_between

    args = fid_parser().parse_args(argv)
    paths = [args.a, args.b]
    a, b = compute(args, paths, checked_kinds(args, paths))
    try:
        value = fid_between(a, b)
    except FIDInputError as err:
        fail(str(err))
    if args.json:
        print(json.dumps({"fid": value, "a": a.summary(), "b": b.summary(),
                          "network": "fid-inception (2015-12-05 weights, TTUR preprocessing)"}))
    else:
        print(f"FID: {value:.4f}")
    return 0


def main_stats(argv: list[str] | None = None) -> int:
    """`ladder fid-stats A --out S.npz`: writes the statistics; 2 for a mistake."""
    args = stats_parser().parse_args(argv)
    (kind,) = checked_kinds(args, [args.a])
    if kind == "stats":
        fail(f"{args.a} already holds statistics (mu, sigma); give a folder or an images .npz")
    if not args.out.lower().endswith(".npz") or os.path.isdir(args.out):
        fail(f"--out {args.out}: give a .npz file path")
    (s,) = compute(args, [args.a], [kind])
    try:
        s.stats.save_pytorch_fid(args.out)
    except OSError as err:
        fail(error_text(err))
    print(f"wrote {args.out}: mu {s.stats.mean.shape} and sigma {s.stats.cov.shape} of {s.stats.n} images "
          f"of {args.a}")
    return 0
