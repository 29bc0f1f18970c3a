"""Vectorised building blocks shared by the mixture fitters in :mod:`ladder_tf.mixture`.

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


def normalise_log_prob(weighted_log_prob: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per-sample log normaliser (N,), responsibilities (N, K) and sum_nk r log r.

    One exp over the (N, K) matrix: r = exp(w - max) / sum, and, as every row of r sums
    to 1, sum_nk r_nk log r_nk = sum_nk r_nk w_nk - sum_n log_norm_n.
    """
    top = tf.reduce_max(weighted_log_prob, axis=1, keepdims=True)
    unnorm = tf.exp(weighted_log_prob - top)
    total = tf.reduce_sum(unnorm, axis=1, keepdims=True)
    resp = unnorm / total
    log_norm = top[:, 0] + tf.math.log(total[:, 0])
    r_log_r = tf.reduce_sum(resp * weighted_log_prob) - tf.reduce_sum(log_norm)
    return log_norm, resp, r_log_r


class Data(NamedTuple):
    """Fitting data: samples x (N, d) and, on the fast path, the design matrix (N, P).

    The design matrix [1, x, x_i x_j (i <= j)] turns both the E step's Mahalanobis
    distances and the M step's moments into one matrix product each (no (N, K, d)
    intermediates). It forms second moments as E[x x^T] - mu mu^T, whose cancellation is
    harmless in float64 on centred data; float32 fits use the stable path instead
    (``design`` None): per-component deviations, as scikit-learn.
    """

    x: tf.Tensor
    design: tf.Tensor | None


def make_data(x: tf.Tensor, fast: bool) -> Data:
    """``Data`` for x (N, d); ``fast`` builds the design matrix."""
    if not fast:
        return Data(x, None)
    i, j = np.triu_indices(x.shape[1])
    pairs = tf.gather(x, i, axis=1) * tf.gather(x, j, axis=1)
    return Data(x, tf.concat([tf.ones_like(x[:, :1]), x, pairs], axis=1))


def weighted_stats(data: Data, resp: tf.Tensor, reg_covar: float):
    """Soft counts nk (K,), means xk (K, d) and covariances sk (K, d, d) of the data.

    As scikit-learn: nk gets 10 * eps so that empty components stay finite, and
    ``reg_covar`` is added to the diagonal of every sk.
    """
    x = data.x
    d = x.shape[1]
    eps = np.finfo(x.dtype.as_numpy_dtype).eps
    if data.design is not None:
        moments = tf.matmul(resp, data.design, transpose_a=True)        # (K, P)
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
    return nk, xk, sk + reg_covar * tf.eye(d, dtype=x.dtype)


def _tri_index(d: int) -> np.ndarray:
    """(d, d) positions of x_i x_j in the design matrix's pair columns (symmetric)."""
    i, j = np.triu_indices(d)
    index = np.zeros((d, d), np.int32)
    index[i, j] = np.arange(len(i))
    index[j, i] = np.arange(len(i))
    return index


def component_log_prob(data: Data, means: tf.Tensor, prec_chol: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """offset_k - 0.5 * Mahalanobis(x_n; mu_k, U_k) for all n, k; shape (N, K).

    Fast path: the quadratic form's coefficients, (P, K), times the design matrix.
    """
    if data.design is None:
        return offset[None, :] - 0.5 * mahalanobis(data.x, means, prec_chol)
    d = means.shape[1]
    prec = tf.matmul(prec_chol, prec_chol, transpose_b=True)             # (K, d, d)
    prec_mean = tf.einsum("kde,ke->kd", prec, means)
    const = offset - 0.5 * tf.reduce_sum(prec_mean * means, axis=1)
    i, j = np.triu_indices(d)
    pair_scale = tf.constant(np.where(i == j, -0.5, -1.0), means.dtype)
    pair = tf.gather_nd(tf.transpose(prec, [1, 2, 0]), np.stack([i, j], 1)) * pair_scale[:, None]
    coef = tf.concat([const[None, :], tf.transpose(prec_mean), pair], axis=0)   # (P, K)
    return tf.matmul(data.design, coef)


def _sq_dist(x: tf.Tensor, x_sq: tf.Tensor, centres: tf.Tensor) -> tf.Tensor:
    """Squared Euclidean distances (N, M) between samples and centres, clipped at 0."""
    c_sq = tf.reduce_sum(tf.square(centres), axis=1)
    return tf.maximum(x_sq[:, None] - 2.0 * tf.matmul(x, centres, transpose_b=True) + c_sq[None, :], 0.0)


def kmeans_init_resp(x: tf.Tensor, n_components: int, seed: tf.Tensor, max_lloyd: int = 30) -> tf.Tensor:
    """Hard responsibilities (N, K) from seeded greedy k-means++ followed by Lloyd steps.

    Seeding is the greedy k-means++ of Arthur and Vassilvitskii (as scikit-learn's
    ``kmeans_plusplus``): each new centre is the best of 2 + floor(log K) candidates drawn
    with probability proportional to the squared distance to the nearest centre so far,
    "best" meaning the lowest total potential. Stateless random ops make the result a
    function of (data, seed) only. Lloyd iterations then run to scikit-learn's KMeans
    tolerance (at most ``max_lloyd``); an empty cluster keeps its centre. This mirrors
    scikit-learn's default ``init_params='kmeans'`` for mixtures.
    """
    dtype = x.dtype
    n = tf.shape(x)[0]
    n_trials = 2 + int(math.log(n_components))
    tiny = np.finfo(dtype.as_numpy_dtype).tiny
    x_sq = tf.reduce_sum(tf.square(x), axis=1)
    seed = tf.cast(seed, tf.int32)

    first = tf.random.stateless_uniform([], seed=seed, maxval=n, dtype=tf.int32)
    centres = tf.tensor_scatter_nd_update(tf.zeros([n_components, x.shape[1]], dtype), [[0]], x[first][None])
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

    def lloyd_body(i, centres, labels, _go_on):
        new_labels = tf.argmin(_sq_dist(x, x_sq, centres), axis=1, output_type=tf.int32)
        one_hot = tf.one_hot(new_labels, n_components, dtype=dtype)
        counts = tf.reduce_sum(one_hot, axis=0)
        sums = tf.matmul(one_hot, x, transpose_a=True)
        new = tf.where(counts[:, None] > 0, sums / tf.maximum(counts, 1.0)[:, None], centres)
        go_on = tf.logical_and(tf.reduce_any(tf.not_equal(new_labels, labels)),
                               tf.reduce_sum(tf.square(new - centres)) > shift_tol)
        return i + 1, new, new_labels, go_on

    labels0 = tf.fill([n], tf.constant(-1, tf.int32))
    _, centres, _, _ = tf.while_loop(lambda i, c, l, go_on: tf.logical_and(i < max_lloyd, go_on), lloyd_body,
                                     (tf.constant(0), centres, labels0, tf.constant(True)))
    labels = tf.argmin(_sq_dist(x, x_sq, centres), axis=1, output_type=tf.int32)
    return tf.one_hot(labels, n_components, dtype=dtype)
