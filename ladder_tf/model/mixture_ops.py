"""Vectorised building blocks shared by the mixture fitters in :mod:`ladder_tf.model.mixture`.

Every function works on whole batches: data ``x`` of shape (N, d), responsibilities of
shape (N, K) and per-component parameters with a leading K axis. None loops in Python
over components or samples, so all of them can run inside one ``tf.function`` graph.

Conventions (the same as scikit-learn's, so that its formulas carry over):

- ``prec_chol`` (K, d, d) is the *upper*-triangular factor U of a precision matrix,
  precision = U U^T, obtained from the covariance's Cholesky factor L as U = L^{-T}
  (a triangular solve; no covariance is ever inverted directly).
- The Mahalanobis distance of x to component k is ||(x - mu_k)^T U_k||^2.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

LOG_2PI = math.log(2.0 * math.pi)


def validate_data(x, dim: int, n_components: int) -> np.ndarray:
    """Checks ``x`` for fitting and returns it as a 2-D numpy array.

    Raises ``ValueError`` with a message that says what to change for: a rank other
    than 2, a wrong feature dimension, NaN or inf values, fewer than 2 samples, or
    fewer samples than mixture components.
    """
    arr = x.numpy() if isinstance(x, tf.Tensor) else np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"Mixture data must have shape (N, {dim}) (rank 2); got shape {arr.shape}.")
    if arr.shape[1] != dim:
        raise ValueError(f"Mixture data must have {dim} features (the mixture's dim); got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"Mixture data must be real numbers; got dtype {arr.dtype}.")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.all(np.isfinite(arr), axis=1)))
        raise ValueError(f"Mixture data contains NaN or inf in {bad} of {arr.shape[0]} rows; "
                         "remove or fix them before fitting.")
    if arr.shape[0] < max(2, n_components):
        raise ValueError(f"Got {arr.shape[0]} samples for a mixture of n_components={n_components}; "
                         "a fit needs at least max(2, n_components) samples: draw more samples "
                         "or reduce n_components.")
    return arr


def cholesky_factors(cov: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Cholesky factor L (K, d, d) of ``cov`` and the precision factor U = L^{-T}."""
    chol = tf.linalg.cholesky(0.5 * (cov + tf.linalg.matrix_transpose(cov)))
    eye = tf.eye(tf.shape(cov)[-1], batch_shape=tf.shape(cov)[:-2], dtype=cov.dtype)
    inv_chol = tf.linalg.triangular_solve(chol, eye, lower=True)  # L^{-1}
    return chol, tf.linalg.matrix_transpose(inv_chol)


def log_det_chol(prec_chol: tf.Tensor) -> tf.Tensor:
    """sum_i log U_ii, i.e. half the log-determinant of the precision; shape (K,)."""
    return tf.reduce_sum(tf.math.log(tf.linalg.diag_part(prec_chol)), axis=-1)


def mahalanobis(x: tf.Tensor, means: tf.Tensor, prec_chol: tf.Tensor) -> tf.Tensor:
    """Squared Mahalanobis distances (N, K) of every sample to every component.

    One (N, d) x (d, K*d) matrix product does the whole batch: y_nk = x_n U_k - mu_k U_k.
    """
    k = tf.shape(prec_chol)[0]
    d = tf.shape(prec_chol)[-1]
    proj = tf.reshape(tf.transpose(prec_chol, [1, 0, 2]), [d, k * d])
    shift = tf.reshape(tf.einsum("kd,kde->ke", means, prec_chol), [k * d])
    y = tf.reshape(tf.matmul(x, proj) - shift, [-1, k, d])
    return tf.reduce_sum(tf.square(y), axis=-1)


def responsibilities(log_prob: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-sample log normaliser (N,) and responsibilities (N, K) of ``log_prob`` (N, K).

    One fused softmax; as the largest responsibility of a row is exp(max_k w - log_norm),
    log_norm = max_k w - log max_k r (at least -log K inside the log, so exact enough).
    """
    top = tf.reduce_max(log_prob, axis=1)
    resp = tf.nn.softmax(log_prob, axis=1)
    return top - tf.math.log(tf.reduce_max(resp, axis=1)), resp


class Data(NamedTuple):
    """Fitting data: samples x (N, d) and, on the fast path, the design matrix.

    The design matrix [1, x, x_i x_j (i <= j)] (N, P), P = 1 + d + d(d+1)/2, turns both
    the E step's Mahalanobis distances and the M step's moments into one matrix product
    each (no (N, K, d) intermediates); it is kept in both layouts, (N, P) and (P, N),
    so that each product runs without a transposed operand. It forms second moments as
    E[x x^T] - mu mu^T, whose cancellation is harmless in float64 on centred data;
    float32 fits use the stable path instead (``design`` None): per-component
    deviations, as scikit-learn.
    """

    x: tf.Tensor
    design: tf.Tensor | None
    design_t: tf.Tensor | None


def make_data(x: tf.Tensor, fast: bool) -> Data:
    """``Data`` for x (N, d); ``fast`` builds the design matrix (row gathers of x^T)."""
    if not fast:
        return Data(x, None, None)
    i, j = np.triu_indices(x.shape[1])
    x_t = tf.transpose(x)
    design_t = tf.concat([tf.ones_like(x_t[:1]), x_t, tf.gather(x_t, i) * tf.gather(x_t, j)], axis=0)
    return Data(x, tf.transpose(design_t), design_t)


class Stats(NamedTuple):
    """Responsibility-weighted statistics of the data (``weighted_stats``)."""

    nk: tf.Tensor               # (K,) soft counts
    xk: tf.Tensor               # (K, d) means
    sk: tf.Tensor               # (K, d, d) covariances, reg_covar on the diagonal
    moments: tf.Tensor | None   # (K, P) resp^T design on the fast path


def weighted_stats(data: Data, resp: tf.Tensor, reg_covar: float) -> Stats:
    """Soft counts, means and covariances of the data under responsibilities (N, K).

    As scikit-learn: nk gets 10 * eps so that empty components stay finite, and
    ``reg_covar`` is added to the diagonal of every sk.
    """
    x = data.x
    d = x.shape[1]
    eps = np.finfo(x.dtype.as_numpy_dtype).eps
    moments = None
    if data.design is not None:
        moments = tf.matmul(tf.transpose(resp), data.design_t, transpose_b=True)   # (K, P)
        nk = moments[:, 0] + 10.0 * eps
        xk = moments[:, 1:1 + d] / nk[:, None]
        second = tf.gather(moments[:, 1 + d:], _tri_index(d), axis=1) / nk[:, None, None]
        sk = second - xk[:, :, None] * xk[:, None, :]
    else:
        nk = tf.reduce_sum(resp, axis=0) + 10.0 * eps
        xk = tf.matmul(resp, x, transpose_a=True) / nk[:, None]
        diff = x[None, :, :] - xk[:, None, :]                           # (K, N, d)
        weighted = diff * tf.transpose(resp)[:, :, None]
        sk = tf.matmul(weighted, diff, transpose_a=True) / nk[:, None, None]
    return Stats(nk, xk, sk + reg_covar * tf.eye(d, dtype=x.dtype), moments)


def _upper_entries(matrices: tf.Tensor) -> tf.Tensor:
    """Entries (i, j), i <= j (``np.triu_indices`` order), of K matrices (K, d, d): (P, K)."""
    i, j = np.triu_indices(matrices.shape[-1])
    return tf.gather_nd(tf.transpose(matrices, [1, 2, 0]), np.stack([i, j], 1))


def _tri_index(d: int) -> np.ndarray:
    """(d, d) positions of x_i x_j in the design matrix's pair columns (symmetric)."""
    i, j = np.triu_indices(d)
    index = np.zeros((d, d), np.int32)
    index[i, j] = np.arange(len(i))
    index[j, i] = np.arange(len(i))
    return index


class LogProb(NamedTuple):
    """offset_k - 0.5 * Mahalanobis(x_n; mu_k, U_k): ``values`` (N, K) and, on the fast
    path, the quadratic form's coefficients ``coef`` (P, K), values = design @ coef."""

    values: tf.Tensor
    coef: tf.Tensor | None


def component_log_prob(data: Data, means: tf.Tensor, prec_chol: tf.Tensor, offset: tf.Tensor) -> LogProb:
    """offset_k - 0.5 * Mahalanobis(x_n; mu_k, U_k) for all n, k (``LogProb``)."""
    if data.design is None:
        return LogProb(offset[None, :] - 0.5 * mahalanobis(data.x, means, prec_chol), None)
    d = means.shape[1]
    prec = tf.matmul(prec_chol, prec_chol, transpose_b=True)             # (K, d, d)
    prec_mean = tf.einsum("kde,ke->kd", prec, means)
    const = offset - 0.5 * tf.reduce_sum(prec_mean * means, axis=1)
    i, j = np.triu_indices(d)
    pair_scale = tf.constant(np.where(i == j, -0.5, -1.0), means.dtype)
    pair = _upper_entries(prec) * pair_scale[:, None]
    coef = tf.concat([const[None, :], tf.transpose(prec_mean), pair], axis=0)   # (P, K)
    return LogProb(tf.matmul(data.design, coef), coef)


def resp_dot_log_prob(log_prob: LogProb, resp: tf.Tensor, stats: Stats) -> tf.Tensor:
    """sum_nk r_nk w_nk for responsibilities r and log-probabilities w (a scalar).

    On the fast path without touching the (N, K) matrices again: sum_n r_nk design_n is
    row k of the M step's moments, so the sum is sum_k moments_k . coef_k.
    """
    if log_prob.coef is None or stats.moments is None:
        return tf.reduce_sum(resp * log_prob.values)
    return tf.reduce_sum(stats.moments * tf.transpose(log_prob.coef))


def _sq_dist(x: tf.Tensor, x_sq: tf.Tensor, centres: tf.Tensor) -> tf.Tensor:
    """Squared Euclidean distances (N, M) between samples and centres, clipped at 0."""
    c_sq = tf.reduce_sum(tf.square(centres), axis=1)
    return tf.maximum(x_sq[:, None] - 2.0 * tf.matmul(x, centres, transpose_b=True) + c_sq[None, :], 0.0)


def _nearest(x: tf.Tensor, centres: tf.Tensor) -> tf.Tensor:
    """Index (N,) of the nearest centre to every sample (||x||^2 does not change it)."""
    c_sq = tf.reduce_sum(tf.square(centres), axis=1)
    return tf.argmin(c_sq[None, :] - 2.0 * tf.matmul(x, centres, transpose_b=True), axis=1,
                     output_type=tf.int32)


def kmeans_init_resp(x: tf.Tensor, n_components: int, seed: tf.Tensor, max_lloyd: int = 30) -> tf.Tensor:
    """Hard responsibilities (N, K) from seeded greedy k-means++ followed by Lloyd steps.

    Seeding is the greedy k-means++ of Arthur and Vassilvitskii (as scikit-learn's
    ``kmeans_plusplus``): each new centre is the best of 2 + floor(log K) candidates drawn
    with probability proportional to the squared distance to the nearest centre so far,
    "best" meaning the lowest total potential. Stateless random ops make the result a
    function of (data, seed) only. Lloyd iterations then run to scikit-learn's KMeans
    tolerance (at most ``max_lloyd``); an empty cluster keeps its centre. This mirrors
    scikit-learn's default ``init_params='kmeans'`` for mixtures. An initialisation
    needs no more precision than float32, which halves its cost on float64 data.
    """
    out_dtype = x.dtype
    x = tf.cast(x, tf.float32)
    n = tf.shape(x)[0]
    n_trials = 2 + int(math.log(n_components))
    tiny = np.finfo(np.float32).tiny
    x_sq = tf.reduce_sum(tf.square(x), axis=1)
    seed = tf.cast(seed, tf.int32)

    first = tf.random.stateless_uniform([], seed=seed, maxval=n, dtype=tf.int32)
    centres = tf.tensor_scatter_nd_update(tf.zeros([n_components, x.shape[1]]), [[0]], x[first][None])
    closest = _sq_dist(x, x_sq, x[first][None])[:, 0]

    def seed_body(c, centres, closest):
        logits = tf.math.log(closest + tiny)[None, :]  # all-zero distances -> uniform
        cand = tf.random.stateless_categorical(logits, n_trials, seed=seed + tf.stack([0, c]))[0]
        d_cand = tf.minimum(closest[None, :], tf.transpose(_sq_dist(x, x_sq, tf.gather(x, cand))))
        best = tf.argmin(tf.reduce_sum(d_cand, axis=1), output_type=tf.int32)
        centres = tf.tensor_scatter_nd_update(centres, [[c]], tf.gather(x, cand[best])[None])
        return c + 1, centres, d_cand[best]

    _, centres, _ = tf.while_loop(lambda c, *_: c < n_components, seed_body,
                                  (tf.constant(1), centres, closest))

    # scikit-learn's KMeans stopping rule: no label changes, or a total squared centre
    # shift <= 1e-4 times the mean per-feature variance of the data.
    shift_tol = 1e-4 * tf.reduce_mean(tf.math.reduce_variance(x, axis=0))
    ones = tf.ones([n])

    def lloyd_body(i, centres, labels, _go_on):
        new_labels = _nearest(x, centres)
        counts = tf.math.unsorted_segment_sum(ones, new_labels, n_components)
        sums = tf.math.unsorted_segment_sum(x, new_labels, n_components)
        new = tf.where(counts[:, None] > 0, sums / tf.maximum(counts, 1.0)[:, None], centres)
        go_on = tf.logical_and(tf.reduce_any(tf.not_equal(new_labels, labels)),
                               tf.reduce_sum(tf.square(new - centres)) > shift_tol)
        return i + 1, new, new_labels, go_on

    labels0 = tf.fill([n], tf.constant(-1, tf.int32))
    _, centres, _, _ = tf.while_loop(lambda i, c, l, go_on: tf.logical_and(i < max_lloyd, go_on), lloyd_body,
                                     (tf.constant(0), centres, labels0, tf.constant(True)))
    return tf.one_hot(_nearest(x, centres), n_components, dtype=out_dtype)


def expected_log_prob_mc(mean: tf.Tensor, std: tf.Tensor, eps: tf.Tensor, means: tf.Tensor,
                         prec_chol: tf.Tensor, log_coef: tf.Tensor) -> tf.Tensor:
    """Monte-Carlo E_{N(mean, diag(std^2))}[log p(t)] of a Gaussian mixture at fixed draws.

    mean, std: (B, d); eps: (B, d, S) standard-normal draws (S per row, the sample axis
    last); the mixture: means (K, d), precision factors U (K, d, d) and
    log_coef_k = log w_k - d/2 log 2pi + log|U_k| (K,). Returns (B,):
    mean_s log p(mean_b + std_b * eps_b[:, s]), what evaluating the density at the S * B
    points gives (up to rounding), computed as a quadratic form in eps instead: with
    a_bk = (mean_b - mu_k) U_k and Lambda_k = U_k U_k^T,

        ||(t - mu_k) U_k||^2 = ||a_bk||^2 + 2 (std_b * eps) . (Lambda_k (mean_b - mu_k))
                               + sum_{i<=j} c_ij std_i std_j Lambda_k,ij eps_i eps_j

    (c_ij = 1 on the diagonal, 2 off it). The draws enter only through the constant
    features [eps_i, eps_i eps_j] (B, d + d(d+1)/2, S), so one batched matrix product
    gives all K x S quadratic forms and the backward pass never touches the (S, B, K, d)
    deviations the direct evaluation forms (its speed: ``benchmarks/mixture_cross_entropy.py``).
    Every term is centred on mean_b, so float32 keeps the direct evaluation's accuracy.
    """
    d = means.shape[-1]
    i, j = np.triu_indices(d)
    diff = mean[:, None, :] - means[None]                                   # (B, K, d)
    a = tf.einsum("bkd,kde->bke", diff, prec_chol)
    lam_diff = tf.einsum("bke,kde->bkd", a, prec_chol)                      # Lambda_k (mean_b - mu_k)
    precision = tf.matmul(prec_chol, prec_chol, transpose_b=True)           # (K, d, d)
    pair_lam = tf.transpose(_upper_entries(precision))
    pair_lam = pair_lam * tf.constant(np.where(i == j, 1.0, 2.0), pair_lam.dtype)      # (K, P)
    pair_std = tf.gather(std, i, axis=1) * tf.gather(std, j, axis=1)                   # (B, P)
    coef = tf.concat([2.0 * std[:, None, :] * lam_diff, pair_std[:, None, :] * pair_lam[None]], -1)
    feats = tf.concat([eps, tf.gather(eps, i, axis=1) * tf.gather(eps, j, axis=1)], axis=1)
    maha = tf.reduce_sum(tf.square(a), axis=-1)[:, :, None] + tf.matmul(coef, feats)   # (B, K, S)
    return tf.reduce_mean(tf.reduce_logsumexp(log_coef[None, :, None] - 0.5 * maha, axis=1), axis=1)


class Published(NamedTuple):
    """A fit as the float32 density uses it: (K,), (K, d), (K, d, d) x 2, (d, K*d), (K*d,), (K,)."""

    weights: tf.Tensor
    means: tf.Tensor
    covariances: tf.Tensor
    scale_tril: tf.Tensor
    proj: tf.Tensor
    proj_shift: tf.Tensor
    log_coef: tf.Tensor


@functools.lru_cache(maxsize=None)
def publish_function(n_components: int, dim: int, dtype_name: str):
    """The compiled step from fitted (weights, means, covariances) to :class:`Published`.

    Arguments: weights (K,), means (K, d), covariances (K, d, d) in ``dtype_name`` and the
    diagonal jitter (scalar). Covariances are symmetrised and jittered, weights normalised;
    ``log_prob``'s factors are y = x @ proj - proj_shift per component and log w - log Z.
    Cached per (K, d, dtype) as ``fit_function`` is, so a new mixture of a known shape
    (every run or evaluation in one process builds several) traces nothing.
    """
    k, d, dt = n_components, dim, tf.as_dtype(dtype_name)
    tiny = float(np.finfo(np.float32).tiny)

    def publish(weights, means, cov, jitter):
        cov = 0.5 * (cov + tf.linalg.matrix_transpose(cov))
        chol, prec_chol = cholesky_factors(cov + jitter * tf.eye(d, dtype=dt))
        weights = weights / tf.reduce_sum(weights)
        log_coef = tf.math.log(tf.maximum(weights, tiny)) - 0.5 * d * LOG_2PI + log_det_chol(prec_chol)
        proj = tf.reshape(tf.transpose(prec_chol, [1, 0, 2]), [d, k * d])
        shift = tf.reshape(tf.einsum("kd,kde->ke", means, prec_chol), [k * d])
        return Published(*(tf.cast(v, tf.float32) for v in (weights, means, cov, chol, proj, shift, log_coef)))

    return tf.function(publish, input_signature=[tf.TensorSpec([k], dt), tf.TensorSpec([k, d], dt),
                                                 tf.TensorSpec([k, d, d], dt), tf.TensorSpec([], dt)])
