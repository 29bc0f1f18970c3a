"""Make the README's sample-grid figure from trained runs (one grid per run, side by side).

    python tools/readme_figures.py --out docs/figures/fashion_samples.png \\
        normal=experiments/mnist_fashion/normal/seed0 ladder=experiments/mnist_fashion/ladder/seed0

Each LABEL=RUN (a run directory or SavedModel) gives 64 images generated from its prior with
seed 0 (the draws of ``ladder sample --seed 0``), shown as an 8 x 8 grid under LABEL.
"""
from __future__ import annotations

import argparse
import sys

from ladder_tf.commands.common import fail, new_parser, quiet_tensorflow


def main(argv: list[str] | None = None) -> int:
    p = new_parser(__doc__)
    p.add_argument("runs", nargs="+", metavar="LABEL=RUN", help="a label and a run directory")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--num", type=int, default=64, help="images per grid (a multiple of 8)")
    p.add_argument("--title", default="", help="a title above the grids")
    args = p.parse_args(argv)
    pairs = [r.split("=", 1) for r in args.runs]
    if any(len(pair) != 2 for pair in pairs):
        fail("each run is LABEL=RUN, e.g. ladder=experiments/mnist_fashion/ladder/seed0")
    quiet_tensorflow(args.verbose)
    from ladder_tf.figures import save_labelled_grids
    from ladder_tf.workflows.trained import load_model

    grids = [(label, load_model(run).generate(args.num, seed=0).numpy()) for label, run in pairs]
    print(save_labelled_grids(grids, args.out, ncols=8, title=args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
