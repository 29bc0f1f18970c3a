"""Write a trained model's images for other FID tools (clean-fid, torch-fidelity, pytorch-fid).

    python -m ladder_tf.workflows.sample RUN --num 10000 --out samples/            # PNG files
    python -m ladder_tf.workflows.sample RUN --num 10000 --out samples.npz         # one uint8 array
    python -m ladder_tf.workflows.sample RUN --num 10000 --out rec.npz --what reconstruction

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

from ladder_tf.commands.common import error_text, fail, new_parser, quiet_tensorflow


def parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("run", metavar="RUN_DIR", help="run directory or SavedModel export")
    p.add_argument("--num", type=int, required=True, metavar="N", help="number of images")
    p.add_argument("--out", required=True, metavar="PATH", help="a .npz file, or a folder for PNG files")
    p.add_argument("--what", choices=("generation", "reconstruction"), default="generation")
    p.add_argument("--reconstruction", choices=("sampled", "mean"), default="sampled",
                   help="reconstructions from one z ~ q(z|x) or from the posterior mean")
    p.add_argument("--seed", type=int, default=0, help="evaluate.py's --seed (repeat 0's draws)")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--data-dir", help="local data for --what reconstruction: IDX files or a .npz")
    p.add_argument("--no-download", action="store_true", help="never try a TensorFlow Datasets download")
    return p


def image_batches(model, args: argparse.Namespace):
    """Float image batches (B, H, W, C) of the requested kind, as ``evaluate.py`` draws them."""
    from ladder_tf.evaluation import fid as fid_lib

    if args.what == "generation":
        return fid_lib.generated_batches(model, args.num, args.batch, fid_lib.derive_seed(args.seed, 0, 1))
    from ladder_tf.data import DataNotFoundError, load_dataset

    try:
        data = load_dataset(model.config.exp_name, args.data_dir, allow_download=not args.no_download)
    except (DataNotFoundError, ValueError) as err:
        fail(str(err))
    z_seed = fid_lib.derive_seed(args.seed, 0, 2) if args.reconstruction == "sampled" else None
    return fid_lib.reconstructed_batches(model, data.x_test[:args.num], args.batch, z_seed)


def write_images(images, out: str) -> str:
    """uint8 images (N, H, W, C) -> ``out`` (.npz, atomically) or PNG files in folder ``out``."""
    import numpy as np

    from ladder_tf.io_utils import atomic_path

    if out.lower().endswith(".npz"):
        with atomic_path(out, suffix=".npz") as tmp:
            np.savez(tmp, images=images)
        return f"{out} (images {images.shape} uint8)"
    from PIL import Image

    os.makedirs(out, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(os.path.join(out, f"{i:06d}.png"))
    return f"{len(images)} PNG files in {out}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.num < 1 or args.batch < 1:
        fail("--num and --batch must be at least 1")
    if os.path.isfile(args.out) and not args.out.lower().endswith(".npz"):
        fail(f"--out {args.out}: an existing file; give a folder (PNG files) or a .npz path")
    quiet_tensorflow(args.verbose)
    import numpy as np

    from ladder_tf.evaluation import ModelLoadError, load_model
    from ladder_tf.evaluation.fid_inception import quantise_uint8
    from ladder_tf.workflows.runs import RunNotFoundError

    try:
        model = load_model(args.run)
    except (RunNotFoundError, ModelLoadError) as err:
        fail(str(err))
    images = np.concatenate([quantise_uint8(b).numpy() for b in image_batches(model, args)])
    try:
        written = write_images(images, args.out)
    except OSError as err:  # an unwritable --out
        fail(error_text(err))
    print(f"wrote {written}: {args.what} of {args.run}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
