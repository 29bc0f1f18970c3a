"""Importance-sampled log marginals: log p(x) of the data VAE and log p(z) of a prior VAE.

    log p(y) ~= logsumexp_k [log p(y|h_k) + log p(h_k) - log q(h_k|y)] - log k,  h_k ~ q(h|y)

is the log of an unbiased estimate of p(y), so a stochastic lower bound on log p(y) that
tightens as k grows. ``ladder_tf.evaluation.nll`` uses it for log p(x) (h = z); the
prior-VAE priors (``ladder_tf.model.priors.prior_vae``) use it for their own
log p(z) = log int p(z|t) p(t) dt (h = t), so that the prior owns its density estimate.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

LogDensity = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (h (S, B, d), seed [2]) -> (S, B)


def importance_sampled_log_marginal(log_likelihood: Callable[[tf.Tensor], tf.Tensor],
                                    log_prior: LogDensity, proposal: tfd.Distribution,
                                    n_samples: int | tf.Tensor, seed: tf.Tensor,
                                    chunk_size: int = 100) -> tf.Tensor:
    """log (1/k sum_k p(y|h_k) p(h_k) / q(h_k|y)), h_k ~ proposal, for a batch of B items.

    ``proposal``: batch shape (B,), event (d,); ``log_likelihood``: h (S, B, d) -> (S, B)
    (the batch's y is bound inside); ``log_prior``: (h (S, B, d), seed) -> (S, B).
    Samples are drawn ``chunk_size`` at a time to bound memory; chunk c draws with
    ``fold_in(seed, c)``. ``n_samples``: a Python int, or an int32 scalar tensor (a SavedModel
    signature's input), for which the same chunks are drawn in a graph loop. Returns (B,).
    """
    seed = tf.convert_to_tensor(seed, tf.int32)

    def log_weights(c, s):  # chunk c of s draws: (s, B)
        z_seed, p_seed = tf.unstack(tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(seed, c), 2))
        z = proposal.sample(s, seed=z_seed)
        return log_likelihood(z) + log_prior(z, p_seed) - proposal.log_prob(z)

    if isinstance(n_samples, int):
        log_w = tf.concat([log_weights(c, min(chunk_size, n_samples - start))
                           for c, start in enumerate(range(0, n_samples, chunk_size))], axis=0)
    else:
        n = tf.cast(n_samples, tf.int32)

        def body(c, chunks):
            return c + 1, chunks.write(c, log_weights(c, tf.minimum(chunk_size, n - c * chunk_size)))

        _, chunks = tf.while_loop(
            lambda c, _: c < (n + chunk_size - 1) // chunk_size, body,
            (tf.constant(0), tf.TensorArray(proposal.dtype, size=0, dynamic_size=True, infer_shape=False)))
        log_w = chunks.concat()
    return tf.reduce_logsumexp(log_w, axis=0) - tf.math.log(tf.cast(n_samples, log_w.dtype))


def latent_gaussian_log_prob_estimate(z: tf.Tensor, encode_t: Callable, decode_t: Callable,
                                      scale: tf.Tensor, log_prob_t: Callable[[tf.Tensor], tf.Tensor],
                                      n_samples: int | tf.Tensor, seed: int | tf.Tensor,
                                      chunk_size: int = 10) -> tf.Tensor:
    """log p(z) of a prior VAE, p(z) = int N(z; decode_t(t), scale^2 I) p(t) dt, estimated by
    importance sampling with q(t|z) = N(encode_t(z)): z (N, d_z) -> (N,).

    ``encode_t`` z -> (mean, std) (N, d_t); ``decode_t`` t (M, d_t) -> (M, d_z);
    ``scale`` the inner sigma; ``log_prob_t`` (..., d_t) -> (...) the hyper prior.
    ``n_samples`` and ``seed``: Python ints or int scalar tensors (the same draws either way).
    """
    z = tf.convert_to_tensor(z, tf.float32)
    mean, std = encode_t(z)
    q = tfd.MultivariateNormalDiag(mean, std)

    def log_likelihood(t):  # (S, N, d_t) -> (S, N)
        s, n = tf.shape(t)[0], tf.shape(t)[1]
        z_mean = tf.reshape(decode_t(tf.reshape(t, [s * n, -1])), [s, n, -1])
        return tfd.Independent(tfd.Normal(z_mean, scale), reinterpreted_batch_ndims=1).log_prob(z[None])

    seed_word = tf.cast(tf.math.floormod(tf.cast(seed, tf.int64), 2 ** 31 - 1), tf.int32)
    return importance_sampled_log_marginal(log_likelihood, lambda t, _: log_prob_t(t), q, n_samples,
                                           tf.stack([seed_word, tf.constant(104729)]), chunk_size)
