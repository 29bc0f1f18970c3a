"""Benchmark: the Monte-Carlo cross-entropy against a Gaussian mixture, two ways, one run.

LaDDer's E_q(t|z)[log p(t)] term (and the GMM prior's E_q(z|x)[log p(z)]) at the
training step's sizes: B = 256 rows of q, S = ``n_MC_samples`` = 100 draws each, a
K = 50 full-covariance mixture in d = 16. Times the forward and backward pass (gradients
with respect to q's mean and std, as in training) of

- ``direct``: ``elbo.monte_carlo_cross_entropy(mixture.log_prob, ...)``, the density
  evaluated at the S x B points;
- ``quadratic_form``: ``mixture.expected_log_prob``, the same estimate (same draws) as a
  quadratic form in the draws (``mixture_ops.expected_log_prob_mc``);

and reports the ratio and the largest difference between the two estimates. The mixture
is fitted to ``hyperprior_fit.make_data``'s unequal, anisotropic clusters.

``--family diagonal``: the VampPrior's E_q(z|x)[log p(z)], an equal-weight mixture of K
diagonal Gaussians (random means, scales 0.2 to 1), direct (the tfp mixture's
``log_prob`` at the draws) against ``elbo.diagonal_mixture_cross_entropy``, with
gradients also with respect to the components' means and scales (the pseudo-inputs'
path).
Prints JSON. Usage: ``python benchmarks/mixture_cross_entropy.py [--family full|diagonal]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

from hyperprior_fit import make_data  # noqa: E402  (this folder is on sys.path)
from ladder_tf.model import elbo  # noqa: E402
from ladder_tf.model.mixture import BayesianGaussianMixture  # noqa: E402


def fitted_mixture(k: int, d: int, seed: int) -> BayesianGaussianMixture:
    """A Dirichlet-process fit to 5,000 points of hyperprior_fit's VAE-latent-like clusters."""
    x, _ = make_data(d, 5000, 1, seed)
    mixture = BayesianGaussianMixture(k, d, seed=seed)
    mixture.fit(x)
    return mixture


def time_fn(fn, args, repeats: int) -> float:
    """Best-of-3 mean seconds per call over ``repeats`` calls (after one warm-up call)."""
    fn(*args)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            out = fn(*args)
        float(out[0][0])
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def with_gradients(estimate):
    """A tf.function: (estimate(*inputs), gradients of its sum with respect to every input)."""
    @tf.function
    def run(*inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            value = estimate(*inputs)
            total = tf.reduce_sum(value)
        return value, tape.gradient(total, inputs)
    return run


def parser() -> argparse.ArgumentParser:
    """This script's command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--family", choices=("full", "diagonal"), default="full")
    return p


def main() -> dict:
    args = parser().parse_args()
    rng = np.random.default_rng(1)
    mean = tf.constant(rng.normal(size=(args.batch, args.d)), tf.float32)
    std = tf.constant(rng.uniform(0.05, 0.5, (args.batch, args.d)), tf.float32)
    seed = tf.constant([1, 2])
    if args.family == "full":
        mixture = fitted_mixture(args.k, args.d, seed=0)
        inputs = (mean, std)
        direct = with_gradients(lambda m, s: elbo.monte_carlo_cross_entropy(mixture.log_prob, m, s, args.samples, seed))
        quadratic = with_gradients(lambda m, s: mixture.expected_log_prob(m, s, args.samples, seed))
    else:
        inputs = (mean, std, tf.constant(rng.normal(size=(args.k, args.d)), tf.float32),
                  tf.constant(rng.uniform(0.2, 1.0, (args.k, args.d)), tf.float32))

        def diagonal_log_prob(means, stds):
            return tfp.distributions.MixtureSameFamily(
                tfp.distributions.Categorical(logits=tf.zeros([args.k])),
                tfp.distributions.MultivariateNormalDiag(means, stds)).log_prob

        direct = with_gradients(lambda m, s, mu, sd: elbo.monte_carlo_cross_entropy(
            diagonal_log_prob(mu, sd), m, s, args.samples, seed))
        quadratic = with_gradients(lambda m, s, mu, sd: elbo.diagonal_mixture_cross_entropy(
            m, s, mu, sd, args.samples, seed))
    v_direct, g_direct = direct(*inputs)
    v_quad, g_quad = quadratic(*inputs)
    seconds = {"direct": time_fn(direct, inputs, args.repeats),
               "quadratic_form": time_fn(quadratic, inputs, args.repeats)}
    grad_diff = max(float(tf.reduce_max(tf.abs(a - b)) / tf.reduce_max(tf.abs(b))) for a, b in zip(g_quad, g_direct))
    report = {"benchmark": "mixture_cross_entropy", "family": args.family, "batch": args.batch,
              "mc_samples": args.samples, "k": args.k, "d": args.d, "cpu_count": os.cpu_count(),
              "tensorflow": tf.__version__,
              "forward_backward_seconds": seconds, "speedup": seconds["direct"] / seconds["quadratic_form"],
              "max_abs_difference_nats": float(tf.reduce_max(tf.abs(v_quad - v_direct))),
              "max_relative_gradient_difference": grad_diff,
              "cross_entropy_range_nats": [float(tf.reduce_min(v_direct)), float(tf.reduce_max(v_direct))]}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
