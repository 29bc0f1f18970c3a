"""The fitting graphs behind :mod:`ladder_tf.model.mixture`: variational (CAVI) and EM.

Variational Bayes for a Gaussian mixture with conjugate Normal-Wishart component priors
and either a truncated stick-breaking (Dirichlet-process) or a finite symmetric
Dirichlet weight prior (Blei and Jordan, 2006; Bishop, PRML section 10.2). The update
and lower-bound formulas are scikit-learn's ``BayesianGaussianMixture`` ones (full
covariances), written for whole batches so that one fit is one graph call:

- E step: log responsibilities from E[log pi_k] + E[log N(x | mu_k, Lambda_k)];
- M step: Beta (stick) or Dirichlet posteriors, Normal-Wishart posteriors;
- lower bound: the evidence lower bound up to an additive constant that does not change
  during a fit (scikit-learn's ``_compute_lower_bound``), reported per sample.

The posterior state is a ``VBState``: stick/Dirichlet concentrations (a, b) (b unused for
the Dirichlet prior), mean precision kappa (K,), posterior means (K, d), degrees of
freedom nu (K,) and the upper-triangular factor U of nu * W, the expected precision
(K, d, d). Its covariance (U U^T)^{-1} is what scikit-learn calls ``covariances_``.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from ladder_tf.model import mixture_ops as ops


class VBState(NamedTuple):
    conc_a: tf.Tensor          # (K,)
    conc_b: tf.Tensor          # (K,)
    mean_precision: tf.Tensor  # (K,)
    means: tf.Tensor           # (K, d)
    dof: tf.Tensor             # (K,)
    prec_chol: tf.Tensor       # (K, d, d), upper triangular


class EMState(NamedTuple):
    weights: tf.Tensor    # (K,)
    means: tf.Tensor      # (K, d)
    prec_chol: tf.Tensor  # (K, d, d), upper triangular


class VBPriors(NamedTuple):
    weight_concentration: tf.Tensor  # scalar
    mean_precision: tf.Tensor        # scalar kappa0
    mean: tf.Tensor                  # (d,)
    dof: tf.Tensor                   # scalar nu0
    covariance: tf.Tensor            # (d, d), the inverse Wishart scale W0^{-1}


def expected_log_weights(a: tf.Tensor, b: tf.Tensor, dirichlet_process: bool) -> tf.Tensor:
    """E_q[log pi_k] (K,) under the stick-breaking Beta(a, b) or Dirichlet(a) posterior."""
    if dirichlet_process:
        dsum = tf.math.digamma(a + b)
        return tf.math.digamma(a) - dsum + tf.cumsum(tf.math.digamma(b) - dsum, exclusive=True)
    return tf.math.digamma(a) - tf.math.digamma(tf.reduce_sum(a))


def mean_weights(a: tf.Tensor, b: tf.Tensor, dirichlet_process: bool) -> tf.Tensor:
    """Posterior expected mixture weights (K,), renormalised (scikit-learn's ``weights_``)."""
    if dirichlet_process:
        s = a + b
        w = a / s * tf.math.cumprod(b / s, exclusive=True)
    else:
        w = a
    return w / tf.reduce_sum(w)


def _sum_over_dims(dof: tf.Tensor, d: int, fn) -> tf.Tensor:
    """sum_{i<d} fn(0.5 * (nu - i)) for each component; shape (K,)."""
    offsets = tf.range(d, dtype=dof.dtype)
    return tf.reduce_sum(fn(0.5 * (dof[:, None] - offsets[None, :])), axis=1)


def vb_log_prob(data: ops.Data, s: VBState, dirichlet_process: bool) -> ops.LogProb:
    """E_q[log pi_k] + E_q[log N(x_n | mu_k, Lambda_k)] for all n, k under the posterior."""
    d = s.means.shape[1]
    log_lambda = d * math.log(2.0) + _sum_over_dims(s.dof, d, tf.math.digamma)
    offset = (ops.log_det_chol(s.prec_chol) - 0.5 * d * (tf.math.log(s.dof) + ops.LOG_2PI)
              + 0.5 * (log_lambda - d / s.mean_precision)
              + expected_log_weights(s.conc_a, s.conc_b, dirichlet_process))
    return ops.component_log_prob(data, s.means, s.prec_chol, offset)


def vb_m_step(stats: ops.Stats, p: VBPriors, dirichlet_process: bool) -> VBState:
    """Conjugate posterior updates given the responsibility-weighted statistics."""
    nk, xk, sk = stats.nk, stats.xk, stats.sk
    if dirichlet_process:
        a = 1.0 + nk
        b = p.weight_concentration + tf.cumsum(nk, exclusive=True, reverse=True)
    else:
        a = p.weight_concentration + nk
        b = tf.zeros_like(nk)
    kappa = p.mean_precision + nk
    means = (p.mean_precision * p.mean[None, :] + nk[:, None] * xk) / kappa[:, None]
    dof = p.dof + nk
    diff = xk - p.mean[None, :]
    outer = diff[:, :, None] * diff[:, None, :]
    cov = (p.covariance[None] + nk[:, None, None] * sk
           + (nk * p.mean_precision / kappa)[:, None, None] * outer) / dof[:, None, None]
    _, prec_chol = ops.cholesky_factors(cov)
    return VBState(a, b, kappa, means, dof, prec_chol)


def vb_lower_bound(s: VBState, r_log_r: tf.Tensor, dirichlet_process: bool) -> tf.Tensor:
    """The (unnormalised) evidence lower bound, up to a constant fixed during a fit, of
    the posterior ``s`` and responsibilities r (``r_log_r`` = sum_nk r log r)."""
    d = s.means.shape[1]
    log_det = ops.log_det_chol(s.prec_chol) - 0.5 * d * tf.math.log(s.dof)
    log_wishart = -(s.dof * log_det + s.dof * d * 0.5 * math.log(2.0)
                    + _sum_over_dims(s.dof, d, tf.math.lgamma))
    if dirichlet_process:
        log_norm_weight = -tf.reduce_sum(tf.math.lgamma(s.conc_a) + tf.math.lgamma(s.conc_b)
                                         - tf.math.lgamma(s.conc_a + s.conc_b))
    else:
        log_norm_weight = (tf.math.lgamma(tf.reduce_sum(s.conc_a))
                           - tf.reduce_sum(tf.math.lgamma(s.conc_a)))
    return (-r_log_r - tf.reduce_sum(log_wishart) - log_norm_weight
            - 0.5 * d * tf.reduce_sum(tf.math.log(s.mean_precision)))


def em_log_prob(data: ops.Data, s: EMState) -> ops.LogProb:
    """log pi_k + log N(x_n | mu_k, Sigma_k) for all n, k."""
    d = s.means.shape[1]
    offset = ops.log_det_chol(s.prec_chol) - 0.5 * d * ops.LOG_2PI + tf.math.log(s.weights)
    return ops.component_log_prob(data, s.means, s.prec_chol, offset)


def em_m_step(stats: ops.Stats) -> EMState:
    """Maximum-likelihood weights, means and (regularised) covariances."""
    _, prec_chol = ops.cholesky_factors(stats.sk)
    return EMState(stats.nk / tf.reduce_sum(stats.nk), stats.xk, prec_chol)


def shift_means(state, shift: tf.Tensor):
    """The same state with ``shift`` (d,) added to its means (data centring)."""
    return state._replace(means=state.means + shift[None, :])


class VBHyper(NamedTuple):
    """The variational fit's settings as graph inputs (so one trace serves all models of
    the same shape): scalar priors and ``reg_covar``, the given prior mean (d,) and
    covariance (d, d), and whether to use the data's mean / covariance instead."""

    weight_concentration: tf.Tensor
    mean_precision: tf.Tensor
    dof: tf.Tensor
    reg_covar: tf.Tensor
    mean: tf.Tensor
    covariance: tf.Tensor
    data_mean: tf.Tensor
    data_covariance: tf.Tensor


def vb_priors(xc: tf.Tensor, shift: tf.Tensor, h: VBHyper) -> VBPriors:
    """Priors for centred data ``xc`` (its mean ``shift`` removed); scikit-learn's defaults
    where ``h`` says so, the data covariance getting ``reg_covar`` on its diagonal."""
    d = xc.shape[1]
    n = tf.cast(tf.shape(xc)[0], xc.dtype)
    data_cov = tf.matmul(xc, xc, transpose_a=True) / (n - 1.0) + h.reg_covar * tf.eye(d, dtype=xc.dtype)
    return VBPriors(h.weight_concentration, h.mean_precision,
                    tf.where(h.data_mean, tf.zeros_like(shift), h.mean - shift), h.dof,
                    tf.where(h.data_covariance, data_cov, h.covariance))


def run_fit(x: tf.Tensor, seed: tf.Tensor, warm: tf.Tensor, max_iter: tf.Tensor, tol: tf.Tensor,
            warm_state, hyper, *, kind: str, n_components: int, dirichlet_process: bool = True) -> dict:
    """One complete fit (initialisation + iterations to convergence) as graph ops.

    ``kind`` is "vb" (``hyper`` a ``VBHyper``) or "em" (``hyper`` = (reg_covar,)). The
    data are centred on their mean first, for accuracy (results are shifted back). When
    ``warm`` is true the iterations start from ``warm_state`` (the previous fit), else
    from an M step on k-means++/Lloyd hard responsibilities seeded by ``seed``.
    Iterations stop once the per-sample lower bound (VB) or mean log-likelihood (EM)
    changes by less than ``tol`` between two iterations, or after ``max_iter``; the first
    iteration never counts as converged. Returns the final state, the per-iteration
    history (n_iter,), n_iter, converged and the final per-sample bound (-inf if none).
    """
    dt = x.dtype
    n = tf.cast(tf.shape(x)[0], dt)
    shift = tf.reduce_mean(x, axis=0)
    xc = x - shift[None, :]
    data = ops.make_data(xc, fast=dt == tf.float64)
    if kind == "vb":
        hyper = VBHyper(*hyper)
        priors = vb_priors(xc, shift, hyper)
        reg_covar = hyper.reg_covar
        m_step = lambda stats: vb_m_step(stats, priors, dirichlet_process)  # noqa: E731
        log_prob = lambda state: vb_log_prob(data, state, dirichlet_process)  # noqa: E731
    else:
        reg_covar = hyper[0]
        m_step, log_prob = em_m_step, functools.partial(em_log_prob, data)

    def step(state):
        lp = log_prob(state)
        log_norm, resp = ops.responsibilities(lp.values)
        stats = ops.weighted_stats(data, resp, reg_covar)
        new = m_step(stats)
        if kind == "em":
            return new, tf.reduce_mean(log_norm)
        r_log_r = ops.resp_dot_log_prob(lp, resp, stats) - tf.reduce_sum(log_norm)
        return new, vb_lower_bound(new, r_log_r, dirichlet_process) / n

    def cold_start():
        return m_step(ops.weighted_stats(data, ops.kmeans_init_resp(xc, n_components, seed), reg_covar))

    state0 = tf.cond(warm, lambda: shift_means(warm_state, -shift), cold_start)

    def body(i, state, prev, _conv, hist):
        state, lb = step(state)
        return i + 1, state, lb, tf.abs(lb - prev) < tol, hist.write(i, lb)

    def cond(i, _state, _prev, conv, _hist):
        return tf.logical_and(i < max_iter, tf.logical_not(conv))

    hist = tf.TensorArray(dt, size=0, dynamic_size=True, element_shape=[])
    inf = tf.constant(np.inf, dt)
    n_iter, state, lb, conv, hist = tf.while_loop(
        cond, body, (tf.constant(0), state0, -inf, tf.constant(False), hist))
    return {"state": shift_means(state, shift), "history": hist.stack(), "n_iter": n_iter,
            "converged": conv, "lower_bound": lb}


def state_shapes(kind: str, k: int, d: int) -> dict:
    """Field name -> shape of the posterior state of a "vb" or "em" fit."""
    if kind == "vb":
        return {"conc_a": [k], "conc_b": [k], "mean_precision": [k], "means": [k, d], "dof": [k],
                "prec_chol": [k, d, d]}
    return {"weights": [k], "means": [k, d], "prec_chol": [k, d, d]}


@functools.lru_cache(maxsize=None)
def fit_function(kind: str, n_components: int, dim: int, dtype_name: str, dirichlet_process: bool = True):
    """The compiled fit for models of one shape: a ``tf.function`` with N left as None.

    Cached per (kind, K, d, dtype, weight prior), so every model of that shape, and every
    refit on a new sample size, reuses one trace. Arguments: x (N, d), seed (2,) int32,
    warm (bool), max_iter (int32), tol, warm_state (tuple), hyper (tuple); see ``run_fit``.
    """
    dt = tf.as_dtype(dtype_name)
    k, d = n_components, dim
    spec = lambda shape, dtype=dt: tf.TensorSpec(shape, dtype)  # noqa: E731
    state_type = VBState if kind == "vb" else EMState
    state_spec = tuple(spec(s) for s in state_shapes(kind, k, d).values())
    if kind == "vb":
        hyper_spec = tuple([spec([])] * 4 + [spec([d]), spec([d, d]), spec([], tf.bool), spec([], tf.bool)])
    else:
        hyper_spec = (spec([]),)

    def fit(x, seed, warm, max_iter, tol, warm_state, hyper):
        return run_fit(x, seed, warm, max_iter, tol, state_type(*warm_state), hyper, kind=kind,
                       n_components=k, dirichlet_process=dirichlet_process)

    return tf.function(fit, input_signature=[spec([None, d]), spec([2], tf.int32), spec([], tf.bool),
                                             spec([], tf.int32), spec([]), state_spec, hyper_spec])
