"""Importance-sampled log-likelihood log p(x) of test images (beyond the paper).

    log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k,  z_k ~ q(z|x)

with the data VAE's Laplace likelihood at its trained scale |sigma| (not the batch floor
used in training). log p(z) is the prior's ``log_prob`` where it is tractable; priors
whose density is itself a latent-variable model (the prior-VAE priors, p(z) = int
p(z|t) p(t) dt) provide ``log_prob_estimate(z, n_samples, seed)``, an importance-sampled
log of an unbiased estimate of p(z) with q(t|z). Plugging that in keeps the estimate of
p(x) unbiased, so the log is still a stochastic lower bound that tightens as k grows.

Nats are those of the continuous density of pixels scaled to [0, 1]; bits/dim converts
that density to the 8-bit scale: (-log p(x) + D log 256) / (D log 2), D = H*W*C.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tqdm.auto import tqdm

tfd = tfp.distributions

LogDensity = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (z (S, B, d), seed [2]) -> (S, B)


class NLLUnsupportedError(RuntimeError):
    """The model or its prior offers no way to evaluate log p(z)."""


def importance_sampled_log_marginal(log_likelihood: Callable[[tf.Tensor], tf.Tensor],
                                    log_prior: LogDensity, proposal: tfd.Distribution,
                                    n_samples: int, seed: tf.Tensor,
                                    chunk_size: int = 100) -> tf.Tensor:
    """log (1/k sum_k p(x|z_k) p(z_k) / q(z_k|x)), z_k ~ proposal, for a batch of B items.

    ``proposal``: batch shape (B,), event (d,); ``log_likelihood``: z (S, B, d) -> (S, B)
    (the batch's x is bound inside); ``log_prior``: (z (S, B, d), seed) -> (S, B).
    Samples are drawn ``chunk_size`` at a time to bound memory. Returns (B,).
    """
    seed = tf.convert_to_tensor(seed, tf.int32)
    chunks = []
    for c, start in enumerate(range(0, n_samples, chunk_size)):
        s = min(chunk_size, n_samples - start)
        z_seed, p_seed = tf.unstack(tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(seed, c), 2))
        z = proposal.sample(s, seed=z_seed)
        chunks.append(log_likelihood(z) + log_prior(z, p_seed) - proposal.log_prob(z))
    log_w = tf.concat(chunks, axis=0)
    return tf.reduce_logsumexp(log_w, axis=0) - tf.math.log(tf.cast(n_samples, log_w.dtype))


def latent_gaussian_log_prob_estimate(z: tf.Tensor, encode_t: Callable, decode_t: Callable,
                                      scale: tf.Tensor, log_prob_t: Callable[[tf.Tensor], tf.Tensor],
                                      n_samples: int, seed: int, chunk_size: int = 10) -> tf.Tensor:
    """log p(z) of a prior VAE, p(z) = int N(z; decode_t(t), scale^2 I) p(t) dt, estimated by
    importance sampling with q(t|z) = N(encode_t(z)): z (N, d_z) -> (N,).

    A ready body for ``PriorVAEPrior.log_prob_estimate(z, n_samples, seed)``:
    ``encode_t`` z -> (mean, std) (N, d_t); ``decode_t`` t (M, d_t) -> (M, d_z);
    ``scale`` the inner sigma; ``log_prob_t`` (..., d_t) -> (...) the hyper prior.
    """
    z = tf.convert_to_tensor(z, tf.float32)
    mean, std = encode_t(z)
    q = tfd.MultivariateNormalDiag(mean, std)

    def log_likelihood(t):  # (S, N, d_t) -> (S, N)
        s, n = tf.shape(t)[0], tf.shape(t)[1]
        z_mean = tf.reshape(decode_t(tf.reshape(t, [s * n, -1])), [s, n, -1])
        return tfd.Independent(tfd.Normal(z_mean, scale), reinterpreted_batch_ndims=1).log_prob(z[None])

    return importance_sampled_log_marginal(log_likelihood, lambda t, _: log_prob_t(t), q, n_samples,
                                           tf.constant([seed % (2 ** 31 - 1), 104729], tf.int32), chunk_size)


def laplace_log_likelihood(vae, x: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
    """log Laplace(x; decode(z), |sigma|) summed over pixels: x (B, H, W, C), z (S, B, d) -> (S, B)."""
    s, b = tf.shape(z)[0], tf.shape(z)[1]
    mu = vae.decode(tf.reshape(z, [s * b, -1]))
    mu = tf.reshape(mu, tf.concat([[s, b], tf.shape(x)[1:]], 0))
    scale = tf.abs(tf.convert_to_tensor(vae.sigma))
    return tfd.Independent(tfd.Laplace(mu, scale), reinterpreted_batch_ndims=3).log_prob(x[None])


def _flat(fn: Callable[[tf.Tensor], tf.Tensor]) -> Callable[[tf.Tensor], tf.Tensor]:
    """Apply a (N, d) -> (N,) function to z (S, B, d) -> (S, B)."""
    def apply(z):
        shape = tf.shape(z)
        return tf.reshape(fn(tf.reshape(z, [-1, shape[-1]])), shape[:-1])
    return apply


def prior_log_density(prior, n_samples: int = 100, name: str = "") -> tuple[LogDensity, str]:
    """(log p(z) function, "exact" | "estimated") for ``prior``, or NLLUnsupportedError.

    Tries ``prior.log_prob`` first; when it raises NotImplementedError, uses
    ``prior.log_prob_estimate(z, n_samples, seed)`` (``seed``: an int) if the prior has it.
    """
    d = int(getattr(prior, "d_z", 0) or 0)
    probe = tf.zeros([2, d]) if d else None
    try:
        if probe is None:
            raise NotImplementedError
        prior.log_prob(probe)
        flat = _flat(prior.log_prob)
        return (lambda z, seed: flat(z)), "exact"
    except NotImplementedError:
        pass
    estimate = getattr(prior, "log_prob_estimate", None)
    if estimate is None:
        raise NLLUnsupportedError(f"prior {name or type(prior).__name__} has neither a tractable "
                                  "log_prob nor a log_prob_estimate(z, n_samples, seed); its "
                                  "log-likelihood cannot be estimated")

    def estimated(z, seed):
        a, b = (int(v) for v in np.asarray(seed).reshape(-1)[:2])
        int_seed = (a + 7919 * b) % (2 ** 31 - 1)
        return _flat(lambda flat_z: estimate(flat_z, n_samples, int_seed))(z)
    return estimated, "estimated"


def model_log_px(model, images: np.ndarray, n_samples: int = 1000, seed: int = 0,
                 prior_samples: int = 100, batch_images: int = 20, chunk_size: int = 100,
                 progress: bool = True) -> dict:
    """log p(x) of every image (uint8 or [0, 1] floats, (N, H, W, C)) under ``model``.

    ``model`` needs ``vae`` (encode, decode, sigma) and ``prior``. Returns
    {"log_px": (N,) array, "prior_density": "exact"|"estimated"}.
    """
    vae, prior = getattr(model, "vae", None), getattr(model, "prior", None)
    name = getattr(model, "name", "model")
    if vae is None or prior is None:
        raise NLLUnsupportedError(f"{name}: the model exposes no vae/prior, so log p(x) cannot be estimated")
    log_prior, kind = prior_log_density(prior, prior_samples, name)
    ll = tf.function(lambda x, z: laplace_log_likelihood(vae, x, z), reduce_retracing=True)
    out = []
    bar = tqdm(total=len(images), desc=f"{name} log p(x)", unit="img", disable=not progress,
               leave=False, mininterval=0.5, dynamic_ncols=True)
    for i, start in enumerate(range(0, len(images), batch_images)):
        x = images[start:start + batch_images]
        x = tf.constant(x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32))
        mean, std = vae.encode(x)
        q = tfd.MultivariateNormalDiag(mean, std)
        value = importance_sampled_log_marginal(lambda z: ll(x, z), log_prior, q, n_samples,
                                                tf.constant([seed, i], tf.int32), chunk_size)
        out.append(value.numpy())
        bar.update(len(x))
    bar.close()
    return {"log_px": np.concatenate(out).astype(np.float64), "prior_density": kind}


def summarise_log_px(log_px: np.ndarray, num_values: int) -> dict:
    """Mean log p(x) (nats/image), its standard error, NLL and bits per dimension."""
    n = len(log_px)
    mean = float(np.mean(log_px))
    sem = float(np.std(log_px, ddof=1) / math.sqrt(n)) if n > 1 else None
    bpd = (-mean + num_values * math.log(256.0)) / (num_values * math.log(2.0))
    return {"log_px_nats": mean, "log_px_sem": sem, "nll_nats": -mean, "bits_per_dim": bpd,
            "bits_per_dim_sem": sem / (num_values * math.log(2.0)) if sem is not None else None,
            "n_images": n, "num_values": num_values}
