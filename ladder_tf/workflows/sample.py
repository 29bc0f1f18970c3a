"""A trained model's images for other FID tools (clean-fid, torch-fidelity, pytorch-fid):
the images ``ladder evaluate`` scores in repeat 0, quantised as the FID protocol does
(``ladder sample``).

``generation``: N images decoded from z ~ p(z) (the draws of evaluation seed S, repeat 0).
``reconstruction``: the test images of repeat 0 of an evaluation with ``--num-samples N``
(all of the test split for N >= its size, else the same random subset, in index order),
decoded from one z ~ q(z|x) each (``sampled``) or from the posterior mean (``mean``).
Every draw is made in fixed chunks (ladder_tf.evaluation.fid.DRAW_CHUNK), so the images do
not depend on the batch size. The output is written batch by batch (``write_images``), never
held in memory whole.
"""
from __future__ import annotations

import math
import os
import shutil
import zipfile
from typing import Iterable, Iterator

import numpy as np
from tqdm.auto import tqdm

from ladder_tf.data import load_run_data
from ladder_tf.evaluation import fid as fid_lib
from ladder_tf.evaluation.fid_inception import quantise_uint8
from ladder_tf.io_utils import atomic_path
from ladder_tf.model.trained import TrainedModel

PNG_MIN_BYTES = 67  # the smallest PNG file (signature, IHDR, one IDAT, IEND)


def image_batches(model: TrainedModel, what: str, num: int, batch: int = 500, seed: int = 0,
                  reconstruction: str = "sampled", data_dir: str | None = None,
                  allow_download: bool = True) -> tuple[int, Iterator]:
    """(number of images, float image batches (B, H, W, C)) of ``what`` ("generation" or
    "reconstruction"; ``reconstruction``: "sampled" or "mean"), as ``ladder evaluate`` draws
    them for ``seed``, repeat 0 (see the module docstring). Raises DataNotFoundError /
    ValueError when the test images that reconstructions need cannot be loaded."""
    if what == "generation":
        return num, fid_lib.generated_batches(model, num, batch, fid_lib.derive_seed(seed, 0, 1))
    data = load_run_data(model.config, data_dir, allow_download)
    idx = fid_lib.subset_indices(len(data.x_test), num, seed, 0)
    z_seed = fid_lib.derive_seed(seed, 0, 2) if reconstruction == "sampled" else None
    return len(idx), fid_lib.reconstructed_batches(model, data.x_test[idx], batch, z_seed)


def uint8_batches(batches: Iterable) -> Iterator[np.ndarray]:
    """Float batches quantised as FID does: uint8 round(255 x) of the clipped [0, 1] values."""
    for b in batches:
        yield quantise_uint8(b).numpy()


def _size_text(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.1f} MB"


def check_room(out: str, n: int, shape: tuple[int, ...]) -> None:
    """Raise ValueError (one line) when ``n`` uint8 images of ``shape`` (H, W, C) cannot fit
    where ``out`` goes: a .npz needs N*H*W*C bytes and more; PNG files need at least
    N * PNG_MIN_BYTES bytes and N free inodes."""
    folder = os.path.dirname(os.path.abspath(out)) if out.lower().endswith(".npz") else os.path.abspath(out)
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    free, png = shutil.disk_usage(folder).free, not out.lower().endswith(".npz")
    if png:
        need, what = n * PNG_MIN_BYTES, f"take at least {_size_text(n * PNG_MIN_BYTES)} as PNG files"
    else:
        need, what = n * math.prod(shape) + 1024, f"take {_size_text(n * math.prod(shape))}"
    if need > free:
        raise ValueError(f"--out {out}: {n} images of {'x'.join(map(str, shape))} would {what}, and "
                         f"{folder} has {_size_text(free)} free; write fewer images (--num-samples) "
                         "or choose another place")
    inodes = os.statvfs(folder).f_favail if png else 0
    if 0 < inodes < n:  # 0: the file system does not count them
        raise ValueError(f"--out {out}: {n} PNG files need {n} new files and {folder} has room "
                         f"for {inodes}; write fewer images (--num-samples) or a .npz")


def write_images(batches: Iterable[np.ndarray], n: int, shape: tuple[int, ...], out: str,
                 progress: bool = True) -> str:
    """Write ``n`` uint8 images (H, W, C) = ``shape``, arriving in ``batches``, as they come:
    to ``out`` (.npz with key ``images``, streamed into a temporary file that is renamed when
    complete) or as PNG files ``000000.png``, ... (grey or RGB) in folder ``out``; a progress
    bar counts the images. Returns what was written, in words."""
    bar = tqdm(total=n, unit="img", desc="writing", disable=not progress, mininterval=1.0,
               dynamic_ncols=True)
    written = 0
    with bar:
        if out.lower().endswith(".npz"):
            header = {"descr": "|u1", "fortran_order": False, "shape": (n, *shape)}
            with atomic_path(out, suffix=".npz") as tmp:
                with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                    with archive.open("images.npy", "w", force_zip64=True) as fh:
                        np.lib.format.write_array_header_1_0(fh, header)
                        for b in batches:
                            fh.write(np.ascontiguousarray(b, np.uint8).tobytes())
                            written += len(b)
                            bar.update(len(b))
                if written != n:
                    raise RuntimeError(f"{written} images arrived for {out}, expected {n}")
            return f"{out} (images {(n, *shape)} uint8)"
        from PIL import Image

        os.makedirs(out, exist_ok=True)
        for b in batches:
            for im in b:
                Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(
                    os.path.join(out, f"{written:06d}.png"))
                written += 1
            bar.update(len(b))
    return f"{written} PNG files in {out}"
