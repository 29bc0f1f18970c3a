"""FID and the paper's Table 1 protocol: which images are compared with which, per repeat.

FID is the Fréchet distance (ladder_tf.evaluation.frechet) between Gaussians fitted to the
features (ladder_tf.evaluation.features) of two image sets. Statistics are cached on disk
(:class:`StatsCache`) so an interrupted evaluation does not recompute finished sets.
"""
from __future__ import annotations

import hashlib
import os
import warnings
import zipfile

import numpy as np
import tensorflow as tf

from ladder_tf.data.images import as_images
from ladder_tf.io_utils import error_line
from ladder_tf.evaluation.features import accumulate_stats
from ladder_tf.evaluation.frechet import GaussianStats, frechet_distance
from ladder_tf.model.trained import TrainedModel


class StatsCache:
    """Feature statistics on disk (``directory/<sha1 of the key>.npz``), so that an
    interrupted evaluation reruns without recomputing what it already finished.

    ``directory`` None: no caching. Keys are strings naming everything the statistics
    depend on (network fingerprint, protocol, data, model checkpoint, seed, repeat, N). A
    cached file that cannot be read is computed again (one warning), never an error.
    """

    def __init__(self, directory: str | None):
        self.directory = directory

    def get(self, key: str, compute) -> GaussianStats:
        """The cached statistics of ``key``, or ``compute()``'s, then cached."""
        if self.directory is None:
            return compute()
        path = os.path.join(self.directory, hashlib.sha1(key.encode()).hexdigest()[:20] + ".npz")
        if os.path.exists(path):
            try:
                return GaussianStats.load(path)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
                warnings.warn(f"{path}: damaged cached statistics ({error_line(err)}); computing them "
                              "again", stacklevel=2)
        stats = compute()
        stats.save(path)
        return stats


def fid(a: GaussianStats, b: GaussianStats) -> float:
    """Fréchet distance between two fitted Gaussians."""
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


# -- the Table 1 protocol ---------------------------------------------------------------
# Reference: the training split (or a fixed random subset of it). Each repeat r compares it
# with N generated images (fresh z ~ p(z)), the reconstructions of N test images (by
# default decoded from a fresh z ~ q(z|x) per repeat; optionally the posterior mean) and
# those N real test images, the test images being a fresh random subset per repeat when
# N < the test split (the same subset for every model, so columns are paired).

def derive_seed(*parts: int) -> int:
    """A non-negative int32 seed from integers (stable across runs and platforms)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] % (2 ** 31 - 1))


def subset_indices(n_test: int, n: int, seed: int, repeat: int) -> np.ndarray:
    """Sorted indices of min(n, n_test) test images for repeat ``repeat``."""
    n = min(n, n_test)
    return np.sort(np.random.default_rng([seed, repeat, 17]).choice(n_test, n, replace=False))


def summarise(values) -> dict:
    """{"mean", "std" (sample std over repeats, None for one repeat), "values"}."""
    v = [float(x) for x in values]
    std = float(np.std(v, ddof=1)) if len(v) > 1 else None
    return {"mean": float(np.mean(v)), "std": std, "values": v}


def reference_indices(n_train: int, size: int | None) -> np.ndarray:
    """The reference images: all of the training split, or a fixed random subset of ``size``
    (seed 0, sorted; the same for every run and evaluation seed)."""
    if size is None or size >= n_train:
        return np.arange(n_train)
    return np.sort(np.random.default_rng([0, 2015]).choice(n_train, size, replace=False))


def reference_stats(extractor, x_train, cache: StatsCache | None = None, key: str = "",
                    progress: bool = True) -> GaussianStats:
    """Feature statistics of ``x_train`` (the training split or its subset: an array or an
    image collection, ladder_tf.data.images), cached under ``key`` (which must name the
    network, protocol and data)."""
    return (cache or StatsCache(None)).get(f"reference|{key}|{len(x_train)}", lambda: accumulate_stats(
        extractor, as_images(x_train).float_batches(extractor.batch_size), len(x_train),
        "reference (train)", progress))


def real_stats(extractor, x_test, num_samples: int, repeats: int, seed: int,
               cache: StatsCache | None = None, key: str = "", progress: bool = True) -> list[GaussianStats]:
    """Statistics of the real test subsets, one per repeat (cached under ``key`` + repeat)."""
    cache, out, x_test = cache or StatsCache(None), [], as_images(x_test)
    for r in range(repeats):
        idx = subset_indices(len(x_test), num_samples, seed, r)
        out.append(cache.get(f"real|{key}|{num_samples}|{seed}|{r}", lambda: accumulate_stats(
            extractor, x_test[idx].float_batches(extractor.batch_size), len(idx),
            f"real test {r + 1}/{repeats}", progress)))
    return out


# Images are drawn and decoded DRAW_CHUNK at a time whatever batch size their consumer asks
# for, so every image is independent of batching: `ladder sample --batch B` writes exactly the
# images `ladder evaluate` scores. 50 is the FID Inception network's batch, whose draws these are.
DRAW_CHUNK = 50
DRAWS = f"chunks of {DRAW_CHUNK}"  # in cache keys: statistics of batch-dependent draws are not reused


def rebatch(chunks, batch: int):
    """The images of ``chunks`` (arrays or tensors of any lengths), in order, as batches of
    ``batch`` (the last one may be smaller)."""
    held, size = [], 0
    for chunk in chunks:
        held.append(chunk)
        size += len(chunk)
        while size >= batch:
            joined = held[0] if len(held) == 1 else tf.concat(held, 0)
            yield joined[:batch]
            held, size = ([joined[batch:]] if size > batch else []), size - batch
    if size:
        yield held[0] if len(held) == 1 else tf.concat(held, 0)


def generated_batches(model: TrainedModel, n: int, batch: int, seed: int):
    """n images decoded from z ~ p(z), in batches of ``batch``.

    Image i is row i mod 50 of ``model.generate(50, derive_seed(seed, i // 50))``
    (DRAW_CHUNK = 50; the last chunk is drawn whole and cut): it depends on ``seed`` and i
    only, not on ``batch`` or ``n``.
    """
    def chunks():
        for k, start in enumerate(range(0, n, DRAW_CHUNK)):
            yield model.generate(DRAW_CHUNK, derive_seed(seed, k))[:min(DRAW_CHUNK, n - start)]

    return rebatch(chunks(), batch)


def reconstructed_batches(model: TrainedModel, images, batch: int, seed: int | None):
    """Reconstructions of ``images`` (an array or an image collection), in batches of ``batch``:
    posterior means (``seed`` None) or decoded z ~ q(z|x).

    Image i is reconstructed in chunk k = i // 50 of 50 images (DRAW_CHUNK; the last chunk
    padded with black images), its z drawn with the stateless seed pair (seed, k): it
    depends on ``seed``, i and its own image only, not on ``batch``.
    """
    def chunks():
        for k, x in enumerate(as_images(images).float_batches(DRAW_CHUNK)):
            m = len(x)
            if m < DRAW_CHUNK:
                x = np.concatenate([x, np.zeros((DRAW_CHUNK - m,) + x.shape[1:], x.dtype)])
            yield (model.reconstruct(x) if seed is None else model.reconstruct(x, (seed, k)))[:m]

    return rebatch(chunks(), batch)


def model_stats(model: TrainedModel, extractor, x_test, num_samples: int, repeats: int, seed: int,
                sampled_reconstruction: bool = True, cache: StatsCache | None = None, key: str = "",
                progress: bool = True) -> dict[str, list[GaussianStats]]:
    """{"generation": [...], "reconstruction": [...]}: feature statistics, one per repeat.

    ``model`` needs only ``generate(n, seed)``, ``reconstruct(x, seed=None)`` (images in
    [0, 1]) and ``name``; images are produced, featurised and dropped one batch at a time.
    Each repeat draws its own z ~ p(z) and (``sampled_reconstruction``) its own
    z ~ q(z|x). ``key`` names the model (checkpoint) and the network for the cache.
    """
    cache, out = cache or StatsCache(None), {"generation": [], "reconstruction": []}
    bs, name, x_test = extractor.batch_size, model.name, as_images(x_test)
    for r in range(repeats):
        gen_seed = derive_seed(seed, r, 1)
        out["generation"].append(cache.get(f"generation|{key}|{num_samples}|{gen_seed}|{bs}|{DRAWS}", lambda: accumulate_stats(
            extractor, generated_batches(model, num_samples, bs, gen_seed), num_samples,
            f"{name} generation {r + 1}/{repeats}", progress)))
        idx = subset_indices(len(x_test), num_samples, seed, r)
        z_seed = derive_seed(seed, r, 2) if sampled_reconstruction else None
        out["reconstruction"].append(cache.get(
            f"reconstruction|{key}|{num_samples}|{seed}|{r}|{z_seed}|{bs}|{DRAWS}", lambda: accumulate_stats(
                extractor, reconstructed_batches(model, x_test[idx], bs, z_seed), len(idx),
                f"{name} reconstruction {r + 1}/{repeats}", progress)))
    return out


def sampling_notes(n_test: int, num_samples: int, repeats: int, sampled_reconstruction: bool) -> dict:
    """How each row's images were drawn, per repeat (for the report)."""
    n = min(n_test, num_samples)
    subset = (f"a fresh random subset of {n} of the {n_test} test images per repeat" if n < n_test else
              f"all {n_test} test images in every repeat")
    return {"generation": f"{num_samples} images decoded from z ~ p(z), fresh draws per repeat",
            "reconstruction": (f"{subset}, decoded from " + ("one z ~ q(z|x) per image, fresh draws per repeat"
                               if sampled_reconstruction else "the posterior mean (deterministic given the images)")),
            "real": subset + ("" if n < n_test or repeats == 1 else " (so this row's spread is 0 by construction)")}


def fid_rows(generation: list[float], reconstruction: list[float], real: list[float]) -> dict:
    """The four rows of Table 1; Difference = generation - reconstruction, paired per repeat."""
    diff = [g - r for g, r in zip(generation, reconstruction)]
    return {"generation": summarise(generation), "reconstruction": summarise(reconstruction),
            "difference": summarise(diff), "real": summarise(real)}
