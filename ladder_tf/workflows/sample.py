"""A trained model's images for other FID tools (clean-fid, torch-fidelity, pytorch-fid):
the draws ``ladder evaluate`` makes, quantised as the FID protocol does (``ladder sample``).

``generation``: images decoded from z ~ p(z) (the draws of evaluation seed S, repeat 0).
``reconstruction``: the first N test images (all of them for N >= the test split) decoded
from one z ~ q(z|x) each (``sampled``) or from the posterior mean (``mean``).
"""
from __future__ import annotations

import os
from typing import Iterator

import numpy as np
import tensorflow as tf

from ladder_tf.data import load_run_data
from ladder_tf.evaluation import fid as fid_lib
from ladder_tf.evaluation.fid_inception import quantise_uint8
from ladder_tf.io_utils import atomic_path
from ladder_tf.model.trained import TrainedModel


def image_batches(model: TrainedModel, what: str, num: int, batch: int = 500, seed: int = 0,
                  reconstruction: str = "sampled", data_dir: str | None = None,
                  allow_download: bool = True) -> Iterator[tf.Tensor]:
    """Float image batches (B, H, W, C) of ``what`` ("generation" or "reconstruction";
    ``reconstruction``: "sampled" or "mean"), as ``ladder evaluate`` draws them for ``seed``,
    repeat 0. Raises DataNotFoundError / ValueError when the test images that
    reconstructions need cannot be loaded."""
    if what == "generation":
        return fid_lib.generated_batches(model, num, batch, fid_lib.derive_seed(seed, 0, 1))
    data = load_run_data(model.config, data_dir, allow_download)
    z_seed = fid_lib.derive_seed(seed, 0, 2) if reconstruction == "sampled" else None
    return fid_lib.reconstructed_batches(model, data.x_test[:num], batch, z_seed)


def sample_images(model: TrainedModel, what: str, num: int, batch: int = 500, seed: int = 0,
                  reconstruction: str = "sampled", data_dir: str | None = None,
                  allow_download: bool = True) -> np.ndarray:
    """The images of ``image_batches`` quantised as FID does: uint8 round(255 x) of the clipped
    [0, 1] values, (N, H, W, C)."""
    batches = image_batches(model, what, num, batch, seed, reconstruction, data_dir, allow_download)
    return np.concatenate([quantise_uint8(b).numpy() for b in batches])


def write_images(images: np.ndarray, out: str) -> str:
    """uint8 images (N, H, W, C) -> ``out`` (.npz with key ``images``, atomically) or PNG files
    ``000000.png``, ... (grey or RGB) in folder ``out``; returns what was written, in words."""
    if out.lower().endswith(".npz"):
        with atomic_path(out, suffix=".npz") as tmp:
            np.savez(tmp, images=images)
        return f"{out} (images {images.shape} uint8)"
    from PIL import Image

    os.makedirs(out, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(os.path.join(out, f"{i:06d}.png"))
    return f"{len(images)} PNG files in {out}"
