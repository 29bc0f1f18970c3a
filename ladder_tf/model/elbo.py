"""ELBO terms as small pure functions. Each returns one value per example (shape (B,)).

Sign convention: every function returns the term as it enters the ELBO (to be maximised),
so log-likelihoods and entropies are added and the negative ELBO is their negated sum.
"""
from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

LOG_2PI = math.log(2.0 * math.pi)


def _flat_sum(x: tf.Tensor) -> tf.Tensor:
    """Sum over every axis but the first."""
    return tf.reduce_sum(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


def laplace_reconstruction(x: tf.Tensor, x_mean: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
    """-(1/sigma) * sum_k |x_k - mu_k|: the data-dependent part of log Laplace(x; mu, sigma)."""
    return -_flat_sum(tf.abs(x - x_mean)) / sigma


def laplace_normaliser(sigma: tf.Tensor, num_values: int) -> tf.Tensor:
    """-D log(2 sigma): the normalising part of the Laplace log-likelihood (a scalar)."""
    return -float(num_values) * tf.math.log(2.0 * sigma)


def effective_sigma(sigma: tf.Variable, x: tf.Tensor, x_mean: tf.Tensor, floor: bool) -> tf.Tensor:
    """The Laplace scale used in the loss: |sigma|, floored by the batch's mean |x - mu|.

    The floor is the original recipe: sigma never drops below the current mean absolute
    pixel error, and when the floor is active its gradient flows into the decoder.
    """
    s = tf.abs(sigma)
    if floor:
        error = tf.reduce_mean(tf.abs(x - x_mean))
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:  # the global batch's error
            error = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, error)
        s = tf.maximum(s, error)
    return s


def gaussian_entropy(std: tf.Tensor) -> tf.Tensor:
    """H[N(mu, diag(std^2))] = 0.5 d (log 2pi + 1) + sum log std; std: (B, d)."""
    d = tf.cast(tf.shape(std)[-1], std.dtype)
    return 0.5 * d * (LOG_2PI + 1.0) + tf.reduce_sum(tf.math.log(std), axis=-1)


def standard_normal_cross_entropy(mean: tf.Tensor, std: tf.Tensor) -> tf.Tensor:
    """E_{N(mean, std^2)}[log N(z; 0, I)] = -0.5 d log 2pi - 0.5 sum(mean^2 + std^2)."""
    d = tf.cast(tf.shape(mean)[-1], mean.dtype)
    return -0.5 * d * LOG_2PI - 0.5 * tf.reduce_sum(tf.square(mean) + tf.square(std), axis=-1)


def gaussian_reconstruction(z: tf.Tensor, z_mean: tf.Tensor, scale: tf.Tensor,
                            mask: tf.Tensor | None = None) -> tf.Tensor:
    """log N(z; z_mean, scale^2 I) with a scalar scale, summed over dims; (B, d) -> (B,).

    ``mask`` (B, d) of 0/1 drops the squared errors of masked dimensions (the original's
    code mask); the normaliser keeps all d dimensions, as the original does.
    """
    sq = tf.square(z - z_mean)
    if mask is not None:
        sq = sq * mask
    d = tf.cast(tf.shape(z)[-1], z.dtype)
    return (-tf.reduce_sum(sq, axis=-1) / (2.0 * tf.square(scale))
            - d * tf.math.log(scale) - 0.5 * d * LOG_2PI)


def reparameterise(mean: tf.Tensor, std: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One sample mean + std * eps, eps ~ N(0, I) from a stateless seed (shape [2])."""
    return mean + std * tf.random.stateless_normal(tf.shape(mean), seed, dtype=mean.dtype)


def mc_normal_draws(mean: tf.Tensor, n_samples: int, seed: tf.Tensor) -> tf.Tensor:
    """The Monte-Carlo draws eps ~ N(0, I) for a batch of Gaussians: (B, d, S), sample axis last.

    One layout for every estimator (``monte_carlo_cross_entropy`` and the mixtures'
    ``expected_log_prob``), so that the same seed gives the same draws in both.
    """
    return tf.random.stateless_normal(tf.concat([tf.shape(mean), [n_samples]], 0), seed, dtype=mean.dtype)


def monte_carlo_cross_entropy(log_prob: Callable[[tf.Tensor], tf.Tensor], mean: tf.Tensor,
                              std: tf.Tensor, n_samples: int, seed: tf.Tensor) -> tf.Tensor:
    """E_{N(mean, std^2)}[log p(z)] estimated by ``n_samples`` reparameterised draws.

    mean, std: (B, d); log_prob maps (S, B, d) -> (S, B). Returns (B,), differentiable
    in mean and std.
    """
    eps = tf.transpose(mc_normal_draws(mean, n_samples, seed), [2, 0, 1])   # (S, B, d)
    return tf.reduce_mean(log_prob(mean[None] + std[None] * eps), axis=0)


def diagonal_mixture_cross_entropy(mean: tf.Tensor, std: tf.Tensor, means: tf.Tensor, stds: tf.Tensor,
                                   n_samples: int, seed: tf.Tensor) -> tf.Tensor:
    """E_{N(mean, std^2)}[log p(z)] for an equal-weight mixture of diagonal Gaussians (B,).

    mean, std: (B, d), the Gaussians of q; means, stds: (K, d), the K components of p (the
    VampPrior's encoded pseudo-inputs). The estimate ``monte_carlo_cross_entropy`` gives
    with ``p.log_prob`` and the same seed (the same ``n_samples`` draws z = mean + std * eps
    per row), computed as a quadratic form in the draws instead of at the S x B points:
    with u_bk = (mean_b - mu_k) / s_k,

        sum_i ((z_i - mu_ki) / s_ki)^2 = ||u_bk||^2 + sum_i 2 u_bki std_bi / s_ki eps_i
                                         + sum_i (std_bi / s_ki)^2 eps_i^2,

    so one batched matrix product of (B, K, 2d) coefficients with the (B, 2d, S) features
    [eps, eps^2] gives every squared distance, and the backward pass never forms the
    (S, B, K, d) deviations. Differentiable in all four inputs.
    """
    d = means.shape[-1]
    eps = mc_normal_draws(mean, n_samples, seed)                            # (B, d, S)
    inv = 1.0 / stds                                                        # (K, d)
    u = (mean[:, None, :] - means[None]) * inv[None]                        # (B, K, d)
    scaled_std = std[:, None, :] * inv[None]                                # (B, K, d)
    coef = tf.concat([2.0 * u * scaled_std, tf.square(scaled_std)], axis=-1)
    features = tf.concat([eps, tf.square(eps)], axis=1)                     # (B, 2d, S)
    sq_dist = tf.reduce_sum(tf.square(u), axis=-1)[:, :, None] + tf.matmul(coef, features)
    n_components = tf.cast(tf.shape(means)[0], mean.dtype)
    log_coef = -tf.math.log(n_components) - 0.5 * d * math.log(2.0 * math.pi) - tf.reduce_sum(
        tf.math.log(stds), axis=-1)                                         # (K,)
    return tf.reduce_mean(tf.reduce_logsumexp(log_coef[None, :, None] - 0.5 * sq_dist, axis=1), axis=1)
