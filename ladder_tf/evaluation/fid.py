"""Fréchet distance between Gaussians fitted to features, and streaming feature statistics.

FID = ||mu_1 - mu_2||^2 + tr(C_1) + tr(C_2) - 2 tr((C_1^{1/2} C_2 C_1^{1/2})^{1/2}).

The usual implementation (``scipy.linalg.sqrtm(C_1 @ C_2)``) works on a non-symmetric
product and returns complex or slightly negative values when the covariances are
near-singular (e.g. fewer samples than feature dimensions). Here every square root is
taken of a *symmetric* positive semi-definite matrix through ``numpy.linalg.eigh`` in
float64, with eigenvalues clipped at zero, so the result is always real and >= 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _symmetric(m: np.ndarray) -> np.ndarray:
    return 0.5 * (m + m.T)


def psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (d, d), negative eigenvalues -> 0."""
    w, v = np.linalg.eigh(_symmetric(np.asarray(cov, np.float64)))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """tr((C_1^{1/2} C_2 C_1^{1/2})^{1/2}) = tr((C_1 C_2)^{1/2}), >= 0, for PSD C_1, C_2."""
    s1 = psd_sqrt(cov1)
    inner = _symmetric(s1 @ np.asarray(cov2, np.float64) @ s1)
    w = np.linalg.eigvalsh(inner)
    return float(np.sum(np.sqrt(np.clip(w, 0.0, None))))


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Squared Wasserstein-2 distance between N(mu1, cov1) and N(mu2, cov2), in float64.

    mu: (d,), cov: (d, d) symmetric PSD. Always real and >= 0 (clipped at 0 against
    round-off), and 0 for identical statistics up to round-off.
    """
    mu1, mu2 = (np.asarray(m, np.float64).reshape(-1) for m in (mu1, mu2))
    cov1, cov2 = (np.asarray(c, np.float64) for c in (cov1, cov2))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, cov {cov1.shape} vs {cov2.shape}")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product(cov1, cov2)
    return float(max(value, 0.0))


@dataclass
class GaussianStats:
    """Mean (d,) and covariance (d, d) of n feature vectors, float64."""

    mean: np.ndarray
    cov: np.ndarray
    n: int

    def save(self, path: str) -> None:
        """Write an .npz atomically (mean, cov, n)."""
        from ladder_tf.io_utils import atomic_path

        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, mean=self.mean, cov=self.cov, n=self.n)

    @classmethod
    def load(cls, path: str) -> "GaussianStats":
        with np.load(path) as f:
            return cls(f["mean"], f["cov"], int(f["n"]))

    def save_pytorch_fid(self, path: str) -> None:
        """Write ``mu`` (d,) and ``sigma`` (d, d) as pytorch-fid's ``--save-stats`` does (its
        ``.npz`` layout, also read by clean-fid and torch-fidelity users), atomically."""
        from ladder_tf.io_utils import atomic_path

        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, mu=self.mean, sigma=self.cov)


class StatsCache:
    """Feature statistics on disk (``directory/<sha1 of the key>.npz``), so that an
    interrupted evaluation reruns without recomputing what it already finished.

    ``directory`` None: no caching. Keys are strings naming everything the statistics
    depend on (network fingerprint, protocol, data, model checkpoint, seed, repeat, N).
    """

    def __init__(self, directory: str | None):
        self.directory = directory

    def get(self, key: str, compute) -> GaussianStats:
        """The cached statistics of ``key``, or ``compute()``'s, then cached."""
        import hashlib
        import os

        if self.directory is None:
            return compute()
        path = os.path.join(self.directory, hashlib.sha1(key.encode()).hexdigest()[:20] + ".npz")
        if os.path.exists(path):
            return GaussianStats.load(path)
        stats = compute()
        stats.save(path)
        return stats


def fid(a: GaussianStats, b: GaussianStats) -> float:
    """Fréchet distance between two fitted Gaussians."""
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


class StreamingStats:
    """Running sums for the mean and covariance of features seen batch by batch.

    Memory is O(d^2) whatever the number of samples: per batch (B, d) it adds the
    float64 sum (d,) and the sum of outer products (d, d). The first batch's mean is
    subtracted before accumulating (a shift that leaves the covariance unchanged and
    avoids the cancellation of the naive E[xx^T] - mu mu^T in float64).
    """

    def __init__(self, dim: int):
        self.dim = dim
        self.n = 0
        self._shift: np.ndarray | None = None
        self._sum = np.zeros(dim, np.float64)
        self._outer = np.zeros((dim, dim), np.float64)

    def update(self, features: np.ndarray) -> None:
        """Add a batch of feature vectors, (B, d)."""
        f = np.asarray(features, np.float64).reshape(len(features), -1)
        if f.shape[1] != self.dim:
            raise ValueError(f"expected features of dimension {self.dim}, got {f.shape[1]}")
        if not len(f):
            return
        if self._shift is None:
            self._shift = f.mean(axis=0)
        c = f - self._shift
        self._sum += c.sum(axis=0)
        self._outer += c.T @ c
        self.n += len(f)

    def finalize(self) -> GaussianStats:
        """Mean and unbiased (n - 1) covariance of everything seen."""
        if self.n < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {self.n}")
        m = self._sum / self.n
        cov = (self._outer - self.n * np.outer(m, m)) / (self.n - 1)
        return GaussianStats(self._shift + m, _symmetric(cov), self.n)


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


def reference_stats(extractor, x_train: np.ndarray, cache: StatsCache | None = None, key: str = "",
                    progress: bool = True) -> GaussianStats:
    """Feature statistics of ``x_train`` (the training split or its subset), cached under
    ``key`` (which must name the network, protocol and data)."""
    from ladder_tf.evaluation.features import accumulate_stats, array_batches

    return (cache or StatsCache(None)).get(f"reference|{key}|{len(x_train)}", lambda: accumulate_stats(
        extractor, array_batches(x_train, extractor.batch_size), len(x_train), "reference (train)", progress))


def real_stats(extractor, x_test: np.ndarray, num_samples: int, repeats: int, seed: int,
               cache: StatsCache | None = None, key: str = "", progress: bool = True) -> list[GaussianStats]:
    """Statistics of the real test subsets, one per repeat (cached under ``key`` + repeat)."""
    from ladder_tf.evaluation.features import accumulate_stats, array_batches

    cache, out = cache or StatsCache(None), []
    for r in range(repeats):
        idx = subset_indices(len(x_test), num_samples, seed, r)
        out.append(cache.get(f"real|{key}|{num_samples}|{seed}|{r}", lambda: accumulate_stats(
            extractor, array_batches(x_test[idx], extractor.batch_size), len(idx),
            f"real test {r + 1}/{repeats}", progress)))
    return out


def generated_batches(model, n: int, batch: int, seed: int):
    """n images decoded from z ~ p(z), batch by batch (batch b drawn with derive_seed(seed, b))."""
    for b, start in enumerate(range(0, n, batch)):
        yield model.generate(min(batch, n - start), derive_seed(seed, b))


def reconstructed_batches(model, images: np.ndarray, batch: int, seed: int | None):
    """Reconstructions batch by batch: posterior means (``seed`` None) or decoded z ~ q(z|x)."""
    for b, start in enumerate(range(0, len(images), batch)):
        x = images[start:start + batch].astype(np.float32) / 255.0
        yield model.reconstruct(x) if seed is None else model.reconstruct(x, (seed, b))


def model_stats(model, extractor, x_test: np.ndarray, num_samples: int, repeats: int, seed: int,
                sampled_reconstruction: bool = True, cache: StatsCache | None = None, key: str = "",
                progress: bool = True) -> dict[str, list[GaussianStats]]:
    """{"generation": [...], "reconstruction": [...]}: feature statistics, one per repeat.

    ``model``: anything with ``generate(n, seed)`` and ``reconstruct(x, seed=None)``
    (images in [0, 1]); images are produced, featurised and dropped one batch at a time.
    Each repeat draws its own z ~ p(z) and (``sampled_reconstruction``) its own
    z ~ q(z|x). ``key`` names the model (checkpoint) and the network for the cache.
    """
    from ladder_tf.evaluation.features import accumulate_stats

    cache, out = cache or StatsCache(None), {"generation": [], "reconstruction": []}
    bs, name = extractor.batch_size, getattr(model, "name", "model")
    for r in range(repeats):
        gen_seed = derive_seed(seed, r, 1)
        out["generation"].append(cache.get(f"generation|{key}|{num_samples}|{gen_seed}|{bs}", lambda: accumulate_stats(
            extractor, generated_batches(model, num_samples, bs, gen_seed), num_samples,
            f"{name} generation {r + 1}/{repeats}", progress)))
        idx = subset_indices(len(x_test), num_samples, seed, r)
        z_seed = derive_seed(seed, r, 2) if sampled_reconstruction else None
        out["reconstruction"].append(cache.get(
            f"reconstruction|{key}|{num_samples}|{seed}|{r}|{z_seed}|{bs}", lambda: accumulate_stats(
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
