"""Make the docs' figures small enough to commit: sample grids of trained runs side by side,
or a compacted copy of a figure a command wrote.

    python tools/readme_figures.py --out docs/figures/fashion_samples.png \\
        normal=experiments/mnist_fashion/normal/seed0 ladder=experiments/mnist_fashion/ladder/seed0
    python tools/readme_figures.py --out docs/figures/digits_2d_paths.png \\
        --copy experiments/digits_2d/interp_1_0/path_density_2d.png

Each LABEL=RUN (a run directory or SavedModel) gives 64 images generated from its prior with
seed 0 (the draws of ``ladder sample --seed 0``), shown as an 8 x 8 grid under LABEL. Every
output is rewritten as an optimised PNG: 8-bit grey when its colour channels agree, else a
palette of at most 128 colours.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ladder_tf.commands.common import fail, new_parser, quiet_tensorflow

PALETTE_COLOURS = 128


def parser() -> argparse.ArgumentParser:
    """This script's command line."""
    p = new_parser(__doc__)
    p.add_argument("runs", nargs="*", metavar="LABEL=RUN", help="a label and a run directory")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--copy", metavar="PNG", help="compact this PNG into --out instead of drawing grids")
    p.add_argument("--num", type=int, default=64, help="images per grid (a multiple of 8)")
    p.add_argument("--title", default="", help="a title above the grids")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if bool(args.copy) == bool(args.runs):
        fail("give either LABEL=RUN arguments or --copy PNG")
    if args.copy:
        print(compact_png(args.copy, args.out))
        return 0
    pairs = [r.split("=", 1) for r in args.runs]
    if any(len(pair) != 2 for pair in pairs):
        fail("each run is LABEL=RUN, e.g. ladder=experiments/mnist_fashion/ladder/seed0")
    quiet_tensorflow(args.verbose)
    from ladder_tf.figures import save_labelled_grids
    from ladder_tf.workflows.trained import ModelLoadError, RunNotFoundError, load_model

    try:
        grids = [(label, load_model(run).generate(args.num, seed=0).numpy()) for label, run in pairs]
    except (RunNotFoundError, ModelLoadError) as err:
        fail(str(err))
    save_labelled_grids(grids, args.out, ncols=8, title=args.title)
    print(compact_png(args.out, args.out))
    return 0


def compact_png(source: str, out: str) -> str:
    """Write ``source`` as an optimised PNG at ``out``: 8-bit grey when its colour channels
    agree (grey images on a white page), else at most ``PALETTE_COLOURS`` colours."""
    from PIL import Image

    from ladder_tf.io_utils import atomic_path

    with Image.open(source) as image:
        rgb = image.convert("RGB")
    pixels = np.asarray(rgb)
    if (pixels == pixels[..., :1]).all():
        compact = Image.fromarray(pixels[..., 0])
    else:
        compact = rgb.quantize(PALETTE_COLOURS)
    with atomic_path(out, suffix=".png") as tmp:
        compact.save(tmp, optimize=True)
    return out


if __name__ == "__main__":
    sys.exit(main())
