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

from ladder_tf.io_utils import atomic_path


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
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, mean=self.mean, cov=self.cov, n=self.n)

    @classmethod
    def load(cls, path: str) -> "GaussianStats":
        with np.load(path) as f:
            return cls(f["mean"], f["cov"], int(f["n"]))

    def save_pytorch_fid(self, path: str) -> None:
        """Write ``mu`` (d,) and ``sigma`` (d, d) as pytorch-fid's ``--save-stats`` does (its
        ``.npz`` layout, also read by clean-fid and torch-fidelity users), atomically."""
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, mu=self.mean, sigma=self.cov)


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
