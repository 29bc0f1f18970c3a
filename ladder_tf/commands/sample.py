"""Write a trained model's images for other FID tools (clean-fid, torch-fidelity, pytorch-fid).

    ladder sample RUN --num 10000 --out samples/            # PNG files
    ladder sample RUN --num 10000 --out samples.npz         # one uint8 array
    ladder sample RUN --num 10000 --out rec.npz --what reconstruction

``generation``: images decoded from z ~ p(z) (the draws ``evaluate.py`` makes for seed
S, repeat 0). ``reconstruction``: the first N test images (all of them for N >= the test
split) decoded from one z ~ q(z|x) each (``--reconstruction mean``: the posterior mean).
Images are quantised as the FID protocol does, uint8 round(255 x) of the clipped
[0, 1] values; a ``.npz`` holds ``images`` (N, H, W, C) uint8, a folder holds
``000000.png``, ... (grey or RGB).
"""
from __future__ import annotations

import argparse
import os
import sys

from ladder_tf.commands.common import add_data_flags, error_text, fail, new_parser, quiet_tensorflow

WHAT = ("generation", "reconstruction")
RECONSTRUCTION = ("sampled", "mean")


def parser() -> argparse.ArgumentParser:
    """The ``ladder sample`` arguments."""
    p = new_parser(__doc__)
    p.add_argument("run", metavar="RUN_DIR", help="run directory or SavedModel export")
    p.add_argument("--num", type=int, required=True, metavar="N", help="number of images")
    p.add_argument("--out", required=True, metavar="PATH", help="a .npz file, or a folder for PNG files")
    p.add_argument("--what", choices=WHAT, default="generation")
    p.add_argument("--reconstruction", choices=RECONSTRUCTION, default="sampled",
                   help="reconstructions from one z ~ q(z|x) or from the posterior mean")
    p.add_argument("--seed", type=int, default=0, help="evaluate.py's --seed (repeat 0's draws)")
    p.add_argument("--batch", type=int, default=500)
    add_data_flags(p, run=True)  # the test images of --what reconstruction
    return p


def main(argv: list[str] | None = None) -> int:
    """`ladder sample`: returns the exit status (2 for a usage mistake or unusable input)."""
    args = parser().parse_args(argv)
    if args.num < 1 or args.batch < 1:
        fail("--num and --batch must be at least 1")
    if os.path.isfile(args.out) and not args.out.lower().endswith(".npz"):
        fail(f"--out {args.out}: an existing file; give a folder (PNG files) or a .npz path")
    quiet_tensorflow(args.verbose)
    # Imported once the arguments are checked: they start TensorFlow (seconds).
    from ladder_tf.data import DataNotFoundError
    from ladder_tf.workflows.sample import sample_images, write_images
    from ladder_tf.workflows.trained import ModelLoadError, RunNotFoundError, load_model

    try:
        model = load_model(args.run)
        images = sample_images(model, args.what, args.num, args.batch, args.seed, args.reconstruction,
                               args.data_dir, allow_download=not args.no_download)
    except (RunNotFoundError, ModelLoadError, DataNotFoundError, ValueError) as err:
        fail(str(err))
    try:
        written = write_images(images, args.out)
    except OSError as err:  # an unwritable --out
        fail(error_text(err))
    print(f"wrote {written}: {args.what} of {args.run}", file=sys.stderr)
    return 0
