"""Each ELBO term against an independent tensorflow_probability computation."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from ladder_tf.model import elbo

tfd = tfp.distributions
rng = np.random.default_rng(0)


def test_laplace_terms_sum_to_tfp_log_prob():
    x = rng.uniform(size=(5, 28, 28, 1)).astype(np.float32)
    mu = rng.uniform(size=(5, 28, 28, 1)).astype(np.float32)
    sigma = tf.constant(0.37)
    ours = elbo.laplace_reconstruction(x, mu, sigma) + elbo.laplace_normaliser(sigma, 28 * 28)
    ref = tf.reduce_sum(tfd.Laplace(mu, sigma).log_prob(x), axis=[1, 2, 3])
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_effective_sigma_floor():
    x = np.zeros((2, 4), np.float32)
    mu = np.full((2, 4), 0.3, np.float32)
    s = tf.Variable(-0.1)
    assert float(elbo.effective_sigma(s, x, mu, floor=False)) == pytest.approx(0.1)
    assert float(elbo.effective_sigma(s, x, mu, floor=True)) == pytest.approx(0.3)
    assert float(elbo.effective_sigma(tf.Variable(0.5), x, mu, floor=True)) == pytest.approx(0.5)


def test_gaussian_entropy_matches_tfp():
    std = rng.uniform(0.05, 2.0, size=(7, 6)).astype(np.float32)
    ref = tfd.MultivariateNormalDiag(tf.zeros(6), std).entropy()
    np.testing.assert_allclose(elbo.gaussian_entropy(std), ref, rtol=1e-5)


def test_standard_normal_cross_entropy_matches_tfp():
    mean = rng.normal(size=(7, 6)).astype(np.float32)
    std = rng.uniform(0.05, 2.0, size=(7, 6)).astype(np.float32)
    q = tfd.MultivariateNormalDiag(mean, std)
    p = tfd.MultivariateNormalDiag(tf.zeros(6), tf.ones(6))
    ref = -(q.kl_divergence(p) + q.entropy())  # E_q[log p] = -(KL + H)
    np.testing.assert_allclose(elbo.standard_normal_cross_entropy(mean, std), ref, rtol=1e-5)


def test_gaussian_reconstruction_matches_tfp_and_mask():
    z = rng.normal(size=(4, 5)).astype(np.float32)
    z_hat = rng.normal(size=(4, 5)).astype(np.float32)
    scale = tf.constant(0.08)
    ref = tf.reduce_sum(tfd.Normal(z_hat, scale).log_prob(z), axis=-1)
    np.testing.assert_allclose(elbo.gaussian_reconstruction(z, z_hat, scale), ref, rtol=1e-5)
    mask = np.ones((4, 5), np.float32)
    mask[:, 2] = 0.0
    masked = elbo.gaussian_reconstruction(z, z_hat, scale, mask)
    z_fixed = z.copy()
    z_fixed[:, 2] = z_hat[:, 2]  # a masked dimension contributes no squared error
    np.testing.assert_allclose(masked, elbo.gaussian_reconstruction(z_fixed, z_hat, scale), rtol=1e-5)


def test_monte_carlo_cross_entropy_converges_to_closed_form():
    mean = rng.normal(size=(3, 2)).astype(np.float32)
    std = rng.uniform(0.2, 1.0, size=(3, 2)).astype(np.float32)
    p = tfd.MultivariateNormalDiag(tf.zeros(2), tf.ones(2))
    mc = elbo.monte_carlo_cross_entropy(p.log_prob, mean, std, 20000, tf.constant([1, 2]))
    np.testing.assert_allclose(mc, elbo.standard_normal_cross_entropy(mean, std), atol=0.03)


def test_monte_carlo_cross_entropy_is_differentiable():
    mean = tf.Variable(rng.normal(size=(3, 2)).astype(np.float32))
    std = tf.Variable(rng.uniform(0.2, 1.0, size=(3, 2)).astype(np.float32))
    p = tfd.MultivariateNormalDiag(tf.zeros(2), tf.ones(2))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(elbo.monte_carlo_cross_entropy(p.log_prob, mean, std, 64, tf.constant([3, 4])))
    g_mean, g_std = tape.gradient(value, [mean, std])
    # d/dmean E[log N(z;0,I)] = -mean exactly under reparameterisation of a quadratic: MC noise only in std
    np.testing.assert_allclose(g_mean, -mean.numpy(), atol=0.35)
    assert np.all(np.isfinite(g_std))


def test_reparameterise_is_deterministic_per_seed():
    mean, std = tf.zeros((2, 3)), tf.ones((2, 3))
    a = elbo.reparameterise(mean, std, tf.constant([5, 6]))
    b = elbo.reparameterise(mean, std, tf.constant([5, 6]))
    c = elbo.reparameterise(mean, std, tf.constant([5, 7]))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("scale", [1.0, 0.02])
def test_diagonal_mixture_cross_entropy_matches_float64_at_the_same_draws(scale):
    """The quadratic form against log p evaluated in float64 (scipy) at the very draws,
    also with narrow components far from q (large squared distances, where a quadratic
    form could lose float32 precision)."""
    from scipy import special, stats

    rng = np.random.default_rng(3)
    b, k, d, s = 5, 7, 6, 40
    mean = rng.normal(size=(b, d)).astype(np.float32)
    std = rng.uniform(0.05, 1.0, (b, d)).astype(np.float32)
    means = (3.0 * rng.normal(size=(k, d))).astype(np.float32)
    stds = (scale * rng.uniform(0.3, 1.5, (k, d))).astype(np.float32)
    seed = tf.constant([4, 2])
    ours = elbo.diagonal_mixture_cross_entropy(mean, std, means, stds, s, seed).numpy()
    eps = np.transpose(elbo.mc_normal_draws(tf.constant(mean), s, seed).numpy(), [2, 0, 1]).astype(np.float64)
    z = mean[None] + std[None].astype(np.float64) * eps                                  # (S, B, d)
    comp = stats.norm.logpdf(z[:, :, None, :], means[None, None], stds[None, None]).sum(-1)
    ref = (special.logsumexp(comp, axis=-1) - np.log(k)).mean(0)
    assert np.abs(ref).max() > (1e4 if scale < 1 else 5.0)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-4)  # tfp's float32 log_prob: the same


def test_diagonal_mixture_cross_entropy_gradients_match_the_direct_estimate():
    rng = np.random.default_rng(4)
    b, k, d, s = 8, 5, 4, 30
    args = [tf.constant(rng.normal(size=(b, d)), tf.float32), tf.constant(rng.uniform(0.1, 1, (b, d)), tf.float32),
            tf.constant(rng.normal(size=(k, d)), tf.float32), tf.constant(rng.uniform(0.3, 1, (k, d)), tf.float32)]
    seed = tf.constant([1, 9])

    def direct(mean, std, means, stds):
        p = tfp.distributions.MixtureSameFamily(tfp.distributions.Categorical(logits=tf.zeros([k])),
                                                tfp.distributions.MultivariateNormalDiag(means, stds))
        return elbo.monte_carlo_cross_entropy(p.log_prob, mean, std, s, seed)

    def quadratic(mean, std, means, stds):
        return elbo.diagonal_mixture_cross_entropy(mean, std, means, stds, s, seed)

    results = []
    for fn in (direct, quadratic):
        with tf.GradientTape() as tape:
            tape.watch(args)
            value = fn(*args)
            total = tf.reduce_sum(value * tf.range(1.0, b + 1.0))
        results.append((value.numpy(), [g.numpy() for g in tape.gradient(total, args)]))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    for ours, ref in zip(results[1][1], results[0][1]):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
