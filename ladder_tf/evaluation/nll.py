"""Importance-sampled log-likelihood log p(x) of test images (beyond the paper).

    log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k,  z_k ~ q(z|x)

(ladder_tf.model.importance) with the data VAE's Laplace likelihood at its trained scale
|sigma| (not the batch floor used in training). log p(z) is the prior's own, as its
capabilities declare (ladder_tf.model.trained): exact where it is tractable; for priors whose
density is itself a latent-variable model (the prior-VAE priors, p(z) = int p(z|t) p(t) dt)
the prior's importance-sampled log of an unbiased estimate of p(z) with q(t|z). Plugging
that in keeps the estimate of p(x) unbiased, so the log is still a stochastic lower bound
that tightens as k grows.

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

from ladder_tf.data.images import as_images
from ladder_tf.model.importance import LogDensity, importance_sampled_log_marginal
from ladder_tf.model.trained import TrainedModel

tfd = tfp.distributions


class NLLUnsupportedError(RuntimeError):
    """The model or its prior offers no way to evaluate log p(z)."""


def laplace_log_likelihood(model, x: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
    """log Laplace(x; decode(z), |sigma|) summed over pixels: x (B, H, W, C), z (S, B, d) -> (S, B).

    ``model``: anything with ``decode`` and ``sigma`` (a TrainedModel, a VAE)."""
    s, b = tf.shape(z)[0], tf.shape(z)[1]
    mu = model.decode(tf.reshape(z, [s * b, -1]))
    mu = tf.reshape(mu, tf.concat([[s, b], tf.shape(x)[1:]], 0))
    scale = tf.abs(tf.convert_to_tensor(model.sigma))
    return tfd.Independent(tfd.Laplace(mu, scale), reinterpreted_batch_ndims=3).log_prob(x[None])


def _flat(fn: Callable[[tf.Tensor], tf.Tensor]) -> Callable[[tf.Tensor], tf.Tensor]:
    """Apply a (N, d) -> (N,) function to z (S, B, d) -> (S, B)."""
    def apply(z):
        shape = tf.shape(z)
        return tf.reshape(fn(tf.reshape(z, [-1, shape[-1]])), shape[:-1])
    return apply


def z_log_density(model: TrainedModel, n_samples: int = 100) -> tuple[LogDensity, str]:
    """(log p(z) function, "exact" | "estimated") of ``model``'s prior, from its declared
    capabilities; NLLUnsupportedError when it has neither.

    The estimate takes ``n_samples`` draws of q(t|z) and an int seed derived from the pair
    it is given.
    """
    if not model.has_density:
        raise NLLUnsupportedError(f"prior {model.name} has neither a tractable log p(z) nor an "
                                  "estimate of it; its log-likelihood cannot be estimated")
    if not model.density_is_estimate:
        flat = _flat(model.log_prob_z)
        return (lambda z, seed: flat(z)), "exact"

    def estimated(z, seed):
        a, b = (int(v) for v in np.asarray(seed).reshape(-1)[:2])
        int_seed = (a + 7919 * b) % (2 ** 31 - 1)
        return _flat(lambda flat_z: model.log_prob_z_estimate(flat_z, n_samples, int_seed))(z)
    return estimated, "estimated"


def model_log_px(model: TrainedModel, images, n_samples: int = 1000, seed: int = 0,
                 prior_samples: int = 100, batch_images: int = 20, chunk_size: int = 100,
                 progress: bool = True) -> dict:
    """log p(x) of every image (uint8 or [0, 1] floats, (N, H, W, C), or an image collection)
    under ``model``.

    ``model`` needs its likelihood scale ``sigma`` (a SavedModel has none) and a log p(z).
    Returns {"log_px": (N,) array, "prior_density": "exact"|"estimated"}.
    """
    name = model.name
    if model.sigma is None:
        raise NLLUnsupportedError(f"{name}: the model exposes no likelihood scale sigma (a "
                                  "SavedModel export has none), so log p(x) cannot be estimated")
    log_prior, kind = z_log_density(model, prior_samples)
    ll = tf.function(lambda x, z: laplace_log_likelihood(model, x, z), reduce_retracing=True)
    out = []
    bar = tqdm(total=len(images), desc=f"{name} log p(x)", unit="img", disable=not progress,
               leave=False, mininterval=0.5, dynamic_ncols=True)
    for i, batch in enumerate(as_images(images).float_batches(batch_images)):
        x = tf.constant(batch)
        mean, std = model.encode(x)
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
