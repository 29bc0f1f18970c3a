"""Importance-sampled log p(x): convergence to a closed form, likelihood, prior densities."""
import math
import types

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from ladder_tf.config import from_dict
from ladder_tf.evaluation import nll
from ladder_tf.model import importance
from ladder_tf.model.priors.normal import NormalPrior
from ladder_tf.model.trained import InProcessModel
from ladder_tf.workflows.build import build_model

tfd = tfp.distributions


def linear_gaussian(d_z=2, d_x=3, noise=0.5, n=40, seed=0):
    """z ~ N(0, I), x | z ~ N(W z + b, noise^2 I): p(x) = N(b, W W^T + noise^2 I) exactly."""
    r = np.random.default_rng(seed)
    w, b = r.normal(size=(d_x, d_z)), r.normal(size=d_x)
    x = r.multivariate_normal(b, w @ w.T + noise ** 2 * np.eye(d_x), size=n)
    exact = scipy.stats.multivariate_normal(b, w @ w.T + noise ** 2 * np.eye(d_x)).logpdf(x)
    # exact posterior q*(z|x) = N(S W^T (x - b) / noise^2, S), S = (I + W^T W / noise^2)^-1
    s = np.linalg.inv(np.eye(d_z) + w.T @ w / noise ** 2)
    post_mean = (x - b) @ w @ s / noise ** 2
    return w, b, x, exact, post_mean, s


def estimator_parts(w, b, x, noise):
    w_t, b_t, x_t = (tf.constant(v, tf.float64) for v in (w, b, x))

    def log_likelihood(z):  # (S, B, d_z) -> (S, B)
        mean = tf.einsum("xd,sbd->sbx", w_t, z) + b_t
        return tfd.Independent(tfd.Normal(mean, tf.constant(noise, tf.float64)), 1).log_prob(x_t[None])

    def log_prior(z, seed):
        return tfd.MultivariateNormalDiag(tf.zeros(z.shape[-1], tf.float64)).log_prob(z)

    return log_likelihood, log_prior


def test_exact_posterior_proposal_gives_exact_marginal_for_any_k():
    w, b, x, exact, post_mean, s = linear_gaussian()
    ll, lp = estimator_parts(w, b, x, 0.5)
    q = tfd.MultivariateNormalTriL(tf.constant(post_mean), tf.constant(np.linalg.cholesky(s)))
    for k in (1, 7):
        est = importance.importance_sampled_log_marginal(ll, lp, q, k, [1, 2], chunk_size=3).numpy()
        np.testing.assert_allclose(est, exact, rtol=0, atol=1e-9)


def test_estimate_converges_to_closed_form_as_k_grows():
    w, b, x, exact, post_mean, s = linear_gaussian(n=60)
    ll, lp = estimator_parts(w, b, x, 0.5)
    # a deliberately poor proposal: shifted and too wide, diagonal
    wide = 1.8 * np.sqrt(np.diag(s)) * np.ones_like(post_mean)
    q = tfd.MultivariateNormalDiag(tf.constant(post_mean + 0.4), tf.constant(wide))
    errors = {}
    for k in (1, 10, 100, 5000):
        est = importance.importance_sampled_log_marginal(ll, lp, q, k, [3, 4], chunk_size=1000).numpy()
        errors[k] = np.mean(exact - est)  # Jensen: a lower bound on average
    assert errors[1] > errors[10] > errors[100] > abs(errors[5000]) - 1e-12
    assert errors[1] > 0.2
    assert abs(errors[5000]) < 0.01, errors


def test_chunking_does_not_change_the_estimate():
    w, b, x, exact, post_mean, s = linear_gaussian(n=5)
    ll, lp = estimator_parts(w, b, x, 0.5)
    q = tfd.MultivariateNormalDiag(tf.constant(post_mean), tf.ones_like(tf.constant(post_mean)))
    a = importance.importance_sampled_log_marginal(ll, lp, q, 50, [5, 6], chunk_size=50).numpy()
    # independent: draw the same 50 samples by hand and logsumexp in numpy
    seed = tf.random.experimental.stateless_fold_in(tf.constant([5, 6], tf.int32), 0)
    z_seed, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    z = q.sample(50, seed=z_seed)
    log_w = (ll(z) + lp(z, None) - q.log_prob(z)).numpy()
    np.testing.assert_allclose(a, scipy.special.logsumexp(log_w, axis=0) - math.log(50), rtol=1e-12)


def test_prior_vae_log_prob_estimate_helper_converges():
    """p(z) = int N(z; A t + c, s^2 I) N(t; 0, I) dt = N(c, A A^T + s^2 I)."""
    a, c, z, exact, post_mean, cov = linear_gaussian(d_z=2, d_x=4, noise=0.3, n=30, seed=3)
    a32, c32 = tf.constant(a, tf.float32), tf.constant(c, tf.float32)
    post_std = np.sqrt(np.diag(cov)).astype(np.float32)

    def encode_t(zz):  # a mismatched diagonal proposal around the exact posterior
        mean = (zz - c32) @ tf.constant(a @ cov / 0.3 ** 2, tf.float32) + 0.2
        return mean, tf.ones_like(mean) * 1.5 * post_std

    def run(k):
        return importance.latent_gaussian_log_prob_estimate(
            z.astype(np.float32), encode_t, lambda t: t @ tf.transpose(a32) + c32, 0.3,
            lambda t: tfd.MultivariateNormalDiag(tf.zeros(2)).log_prob(t), k, seed=5, chunk_size=500).numpy()

    err_small, err_large = np.mean(exact - run(2)), np.mean(exact - run(4000))
    assert err_small > 0.05 and abs(err_large) < 0.02, (err_small, err_large)


def test_laplace_likelihood_uses_abs_sigma_against_scipy():
    r = np.random.default_rng(1)
    proj = r.normal(size=(3, 2 * 2 * 1)).astype(np.float32)
    vae = types.SimpleNamespace(sigma=tf.Variable(-0.3),
                                decode=lambda z: tf.reshape(tf.sigmoid(z @ proj), [-1, 2, 2, 1]))
    x = r.uniform(size=(4, 2, 2, 1)).astype(np.float32)
    z = r.normal(size=(5, 4, 3)).astype(np.float32)
    out = nll.laplace_log_likelihood(vae, tf.constant(x), tf.constant(z)).numpy()
    mu = 1 / (1 + np.exp(-(z @ proj)))  # (5, 4, 4)
    ref = scipy.stats.laplace(mu, 0.3).logpdf(x.reshape(1, 4, 4)).sum(-1)
    np.testing.assert_allclose(out, ref, rtol=1e-5)


def test_prior_density_exact_estimated_and_unsupported():
    """The density is chosen from the prior's declared capabilities, never by calling it."""
    cfg = from_dict({"prior": "normal", "code_size": 3})
    fn, kind = nll.z_log_density(InProcessModel(cfg, None, NormalPrior(cfg)))
    z = tf.random.normal([4, 5, 3])
    assert kind == "exact"
    np.testing.assert_allclose(fn(z, None), tfd.MultivariateNormalDiag(tf.zeros(3)).log_prob(z), rtol=1e-6)

    calls = []

    class EstimatedPrior:
        has_density, density_is_estimate = True, True

        def log_prob(self, z):
            raise AssertionError("an estimated density is never called as exact")

        def log_prob_estimate(self, z, n_samples, seed):
            calls.append((tuple(z.shape), n_samples, seed))
            return -tf.reduce_sum(z ** 2, -1)

    fn, kind = nll.z_log_density(InProcessModel(cfg, None, EstimatedPrior()), n_samples=17)
    assert kind == "estimated"
    np.testing.assert_allclose(fn(z, tf.constant([1, 2])), -tf.reduce_sum(z ** 2, -1), rtol=1e-6)
    assert calls[-1] == ((20, 3), 17, (1 + 7919 * 2) % (2 ** 31 - 1))

    class Opaque:
        has_density, density_is_estimate = False, False

    with pytest.raises(nll.NLLUnsupportedError, match="prior normal has neither a tractable log p"):
        nll.z_log_density(InProcessModel(cfg, None, Opaque()))
    with pytest.raises(nll.NLLUnsupportedError, match="no likelihood scale"):
        nll.model_log_px(types.SimpleNamespace(name="saved", sigma=None), np.zeros((1, 2, 2, 1), np.uint8),
                         progress=False)


@pytest.mark.parametrize("prior, density, t_space", [
    ("normal", "exact", False), ("gmm", "exact", False), ("vampprior", "exact", False),
    ("hierarchical", "estimated", True), ("ladder", "estimated", True)])
def test_every_prior_declares_its_density(prior, density, t_space):
    cfg = from_dict({"prior": prior, "code_size": 3, "representation_size": 2, "num_hidden_units": 64,
                     "n_mixtures": 3, "n_layers_inner_VAE": 1, "num_hidden_units_inner_VAE": 16})
    vae, p = build_model(cfg)
    model = InProcessModel(cfg, vae, p)
    assert (model.has_density, model.has_t_space) == (True, t_space)
    fn, kind = nll.z_log_density(model, n_samples=8)
    z = tf.random.stateless_normal([2, 4, 3], seed=[0, 1])
    assert kind == density
    if density == "exact":
        np.testing.assert_allclose(fn(z, None), p.log_prob(z), rtol=1e-6)
    else:  # the prior's own estimate, seeded as nll derives it from the pair
        ref = p.log_prob_estimate(tf.reshape(z, [8, 3]), 8, (3 + 7919 * 4) % (2 ** 31 - 1))
        np.testing.assert_allclose(fn(z, tf.constant([3, 4])), tf.reshape(ref, [2, 4]), rtol=1e-6)
        with pytest.raises(NotImplementedError):
            p.log_prob(z)


def test_model_log_px_on_a_vae_tightens_with_k():
    """On a (randomly initialised) VAE: mean log p(x) grows with k (Jensen) and is finite."""
    from ladder_tf.model.vae import VAE

    cfg = from_dict({"prior": "normal", "code_size": 4, "num_hidden_units": 64})
    model = InProcessModel(cfg, VAE(cfg), NormalPrior(cfg))
    x = np.random.default_rng(2).integers(0, 256, size=(12, 28, 28, 1)).astype(np.uint8)
    lo = nll.model_log_px(model, x, n_samples=1, seed=0, batch_images=5, progress=False)
    hi = nll.model_log_px(model, x, n_samples=64, seed=0, batch_images=5, chunk_size=16, progress=False)
    assert lo["prior_density"] == "exact" and hi["log_px"].shape == (12,)
    assert np.all(np.isfinite(hi["log_px"])) and hi["log_px"].mean() > lo["log_px"].mean()


def test_summary_bits_per_dim():
    s = nll.summarise_log_px(np.array([-100.0, -120.0]), num_values=784)
    assert s["nll_nats"] == pytest.approx(110.0)
    assert s["bits_per_dim"] == pytest.approx((110.0 + 784 * math.log(256)) / (784 * math.log(2)))
    assert s["log_px_sem"] == pytest.approx(np.std([-100, -120], ddof=1) / math.sqrt(2))
