"""Tests of ladder_tf.model.mixture: the CAVI Dirichlet-process mixture and the EM mixture.

References are independent: scikit-learn (test-only), scipy and tfp distributions.
Models of one (K, d, dtype, prior) share one compiled fit, so the tests reuse a few
shapes to keep the whole file fast.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from ladder_tf.model import elbo, mixture_cavi, mixture_ops
from ladder_tf.model.mixture import BayesianGaussianMixture, FitResult, GaussianMixtureEM

tfd = tfp.distributions
sklearn_mixture = pytest.importorskip("sklearn.mixture")


# -- data ---------------------------------------------------------------------------------
def blobs(seed: int, d: int, n_true: int, n: int, min_dist: float, n_test: int = 0):
    """Unit-variance Gaussian clusters whose centres are min_dist to 1.5 min_dist apart."""
    rng = np.random.default_rng(seed)
    while True:  # in d dims, pairwise distances of N(0, s^2 I) centres concentrate at s sqrt(2d)
        centres = rng.normal(size=(n_true, d)) * 1.2 * min_dist / np.sqrt(2 * d)
        dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + 1e9 * np.eye(n_true)
        if min_dist <= dist.min() <= 1.5 * min_dist:
            break
    weights = np.linspace(1.0, 2.0, n_true) / np.linspace(1.0, 2.0, n_true).sum()

    def draw(m):
        lab = rng.choice(n_true, m, p=weights)
        return centres[lab] + rng.normal(size=(m, d))

    return centres, draw(n), draw(n_test)


def latent_like(seed: int, d: int, n: int, n_test: int, n_clusters: int = 8):
    """A VAE-latent-like set: unequal, anisotropic, partly overlapping clusters."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_clusters, 0.7))
    means = rng.normal(size=(n_clusters, d))
    factors = rng.normal(size=(n_clusters, d, d)) / np.sqrt(d)
    scales = np.exp(rng.uniform(np.log(0.1), np.log(0.4), n_clusters))
    chols = np.linalg.cholesky(scales[:, None, None] ** 2 * (factors @ factors.transpose(0, 2, 1) + 0.1 * np.eye(d)))

    def draw(m):
        lab = rng.choice(n_clusters, m, p=weights)
        return means[lab] + np.einsum("nij,nj->ni", chols[lab], rng.normal(size=(m, d)))

    return draw(n), draw(n_test)


def plugin_loglik(weights, means, covs, x) -> float:
    """Average log-density of x under a Gaussian mixture, with scipy."""
    comp = np.stack([multivariate_normal(m, c, allow_singular=False).logpdf(x) for m, c in zip(means, covs)], 1)
    return float(np.mean(logsumexp(comp + np.log(np.maximum(weights, 1e-300)), axis=1)))


def model_loglik(model, x) -> float:
    return plugin_loglik(model.weights.numpy().astype(np.float64), model.means.numpy().astype(np.float64),
                         model.covariances.numpy().astype(np.float64), x)


@pytest.fixture(scope="module")
def two_d():
    """4 well-separated clusters in 2-D, 2000 train and 1000 test points."""
    return blobs(0, 2, 4, 2000, 10.0, n_test=1000)


@pytest.fixture(scope="module")
def fitted_2d(two_d):
    model = BayesianGaussianMixture(8, 2, tol=1e-6, max_iter=500)
    result = model.fit(two_d[1])
    return model, result


# -- the objective ------------------------------------------------------------------------
@pytest.mark.parametrize("case", [
    ("dirichlet_process", 2, "separated"), ("dirichlet_distribution", 2, "separated"),
    ("dirichlet_process", 2, "latent"), ("dirichlet_distribution", 2, "latent"),
    ("dirichlet_process", 8, "overlapping"), ("dirichlet_process", 16, "latent"),
])
def test_elbo_never_decreases(case):
    prior, d, kind = case
    if kind == "latent":
        x, _ = latent_like(1, d, 2000, 0)
    else:
        x = blobs(2, d, 4, 2000, 10.0 if kind == "separated" else 4.0)[1]
    model = BayesianGaussianMixture(8, d, weight_concentration_prior_type=prior, tol=0.0, max_iter=150)
    res = model.fit(x)
    lbs = res.lower_bounds
    assert res.n_iter == 150 and lbs.shape == (150,) and np.all(np.isfinite(lbs))
    assert np.all(np.diff(lbs) >= -1e-10 * np.maximum(1.0, np.abs(lbs[1:]))), np.diff(lbs).min()
    assert lbs[-1] > lbs[0]


def test_em_log_likelihood_never_decreases():
    x, _ = latent_like(3, 2, 2000, 0)
    res = GaussianMixtureEM(8, 2, tol=0.0, max_iter=100).fit(x)
    assert np.all(np.diff(res.lower_bounds) >= -1e-10 * np.abs(res.lower_bounds[1:]))


# -- recovery -----------------------------------------------------------------------------
@pytest.mark.parametrize("d,n", [(2, 2000), (8, 3000), (16, 5000)])
@pytest.mark.parametrize("min_dist", [10.0, 4.0], ids=["separated", "overlapping"])
def test_recovers_components_and_means(d, n, min_dist):
    centres, x, _ = blobs(1, d, 4, n, min_dist)
    model = BayesianGaussianMixture(8, d, tol=1e-6, max_iter=500, n_init=2, seed=1)
    model.fit(x)
    active = model.active_parameters()
    assert len(active["weights"]) == 4, np.sort(model.weights.numpy())[::-1]
    # each true centre has an active mean within ~ the sampling error (sd 1, ~500 points)
    dist = np.linalg.norm(centres[:, None] - active["means"][None], axis=-1)
    assert np.all(dist.min(axis=1) < 0.1 * np.sqrt(d) + 0.1), dist.min(axis=1)
    np.testing.assert_allclose(active["weights"].sum(), 1.0, rtol=1e-6)


# -- against scikit-learn -----------------------------------------------------------------
@pytest.mark.parametrize("prior,d", [("dirichlet_process", 2), ("dirichlet_distribution", 2),
                                     ("dirichlet_process", 8)])
def test_heldout_loglik_matches_sklearn(prior, d):
    """Same settings and stopping rule (sklearn's tol on the total bound = ours * N).

    K = 16 > 8 clusters, as in use (K = 50): with K = 8 both implementations land in a
    worse local optimum for some seeds."""
    x, x_test = latent_like(4, d, 2000, 2000)
    tol = 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = sklearn_mixture.BayesianGaussianMixture(
            n_components=16, covariance_type="full", weight_concentration_prior_type=prior,
            weight_concentration_prior=0.1, tol=tol, max_iter=1000, random_state=0).fit(x)
    ours = BayesianGaussianMixture(16, d, weight_concentration_prior_type=prior, tol=tol / len(x), max_iter=1000)
    ours.fit(x)
    ll_sk = plugin_loglik(sk.weights_, sk.means_, sk.covariances_, x_test)
    assert model_loglik(ours, x_test) >= ll_sk - 0.02


def test_same_posterior_as_sklearn_from_same_start(two_d):
    """From a converged fit, one more CAVI step agrees with scikit-learn's formulas."""
    x = two_d[1]
    sk = sklearn_mixture.BayesianGaussianMixture(n_components=8, weight_concentration_prior=0.1, tol=1e-8,
                                                 max_iter=500, random_state=0).fit(x)
    ours = BayesianGaussianMixture(8, 2, tol=0.0, max_iter=1, warm_start=True)
    ours.fit(x)  # one iteration from k-means, then overwrite the state with sklearn's fit
    state = (sk.weight_concentration_[0], sk.weight_concentration_[1], sk.mean_precision_, sk.means_,
             sk.degrees_of_freedom_, sk.precisions_cholesky_)
    for var, value in zip(ours._state, state):
        var.assign(value)
    ours.fit(x)
    sk.set_params(warm_start=True, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(x)
    np.testing.assert_allclose(ours.weights.numpy(), sk.weights_, atol=1e-6)
    np.testing.assert_allclose(ours.means.numpy(), sk.means_, atol=1e-5)
    np.testing.assert_allclose(ours.covariances.numpy(), sk.covariances_, rtol=1e-4, atol=1e-6)


def test_em_matches_sklearn_and_jitter():
    x, x_test = latent_like(5, 2, 2000, 2000)
    sk = sklearn_mixture.GaussianMixture(8, covariance_type="full", tol=1e-3, max_iter=1000, random_state=0).fit(x)
    ours = GaussianMixtureEM(8, 2, tol=1e-3, max_iter=1000)
    res = ours.fit(x)
    assert res.converged
    assert model_loglik(ours, x_test) >= sk.score(x_test) - 0.02
    jittered = GaussianMixtureEM(8, 2, tol=1e-3, max_iter=1000, covariance_jitter=0.01)
    jittered.fit(x)
    np.testing.assert_allclose(jittered.covariances.numpy(), ours.covariances.numpy(), rtol=1e-5, atol=1e-7)
    cov_j = ours.covariances.numpy() + 0.01 * np.eye(2)
    expected = plugin_loglik(ours.weights.numpy(), ours.means.numpy(), cov_j, x_test[:200])
    np.testing.assert_allclose(np.mean(jittered.log_prob(x_test[:200].astype(np.float32))), expected, atol=1e-4)


# -- initialisation, restarts and warm start ----------------------------------------------
def test_warm_start_converges_in_a_few_iterations(two_d):
    _, x, x_new = two_d
    model = BayesianGaussianMixture(8, 2, tol=1e-6, max_iter=500, warm_start=True)
    cold = model.fit(x)
    again = model.fit(x)
    assert cold.n_iter > 10 and again.n_iter <= 3 and again.converged
    fresh = model.fit(x_new)  # a new sample of the same distribution, as each epoch
    assert fresh.converged and fresh.n_iter <= 10 and fresh.n_iter < cold.n_iter


def test_seeded_and_repeatable(two_d):
    x = two_d[1]
    a = BayesianGaussianMixture(8, 2, max_iter=50, seed=3)
    b = BayesianGaussianMixture(8, 2, max_iter=50, seed=3)
    ra, rb = a.fit(x), b.fit(x)
    np.testing.assert_array_equal(ra.lower_bounds, rb.lower_bounds)
    np.testing.assert_array_equal(a.means.numpy(), b.means.numpy())


def test_n_init_keeps_the_best_restart():
    x, _ = latent_like(6, 2, 1500, 0)
    single = BayesianGaussianMixture(8, 2, max_iter=200, seed=0).fit(x)
    best = BayesianGaussianMixture(8, 2, max_iter=200, seed=0, n_init=3).fit(x)
    assert best.lower_bound >= single.lower_bound


def test_float32_fit_close_to_float64(two_d):
    _, x, x_test = two_d
    m64 = BayesianGaussianMixture(8, 2, tol=1e-5, max_iter=300)
    m32 = BayesianGaussianMixture(8, 2, tol=1e-5, max_iter=300, fit_dtype=tf.float32)
    m64.fit(x), m32.fit(x)
    assert abs(model_loglik(m32, x_test) - model_loglik(m64, x_test)) < 0.01


# -- bad and degenerate input -------------------------------------------------------------
@pytest.mark.parametrize("bad,match", [
    (np.zeros((5, 2)), "at least"), (np.full((20, 2), np.nan), "NaN or inf"),
    (np.array([[0.0, np.inf]] * 20), "NaN or inf"), (np.zeros(20), "rank 2"),
    (np.zeros((20, 2, 1)), "rank 2"), (np.zeros((20, 3)), "2 features"),
])
def test_bad_input_raises_value_error(bad, match):
    for model in (BayesianGaussianMixture(8, 2), GaussianMixtureEM(8, 2)):
        with pytest.raises(ValueError, match=match):
            model.fit(bad)
        assert not bool(model.fitted.numpy())


@pytest.mark.parametrize("kwargs", [dict(n_components=0), dict(dim=0), dict(n_init=0), dict(tol=-1.0),
                                    dict(degrees_of_freedom_prior=0.5), dict(weight_concentration_prior=0.0),
                                    dict(weight_concentration_prior_type="pitman_yor"),
                                    dict(covariance_prior=-np.eye(2)), dict(mean_prior=np.zeros(3))])
def test_bad_settings_raise_value_error(kwargs):
    args = dict(n_components=4, dim=2)
    args.update(kwargs)
    with pytest.raises(ValueError):
        BayesianGaussianMixture(args.pop("n_components"), args.pop("dim"), **args)


@pytest.mark.parametrize("cls", [BayesianGaussianMixture, GaussianMixtureEM])
def test_degenerate_data_gives_finite_fit(cls):
    same = np.ones((200, 2)) * 3.0
    t = np.linspace(-1, 1, 300)[:, None]
    line = np.concatenate([t, 2 * t], axis=1)
    for x in (same, line):
        model = cls(8, 2, max_iter=100)
        model.fit(x)
        for var in (model.weights, model.means, model.covariances, model.scale_tril):
            assert np.all(np.isfinite(var.numpy()))
        assert np.all(np.isfinite(model.log_prob(x[:10].astype(np.float32)).numpy()))
        assert np.all(np.isfinite(model.sample(10, seed=1).numpy()))


# -- the fitted mixture as a distribution -------------------------------------------------
def test_log_prob_matches_tfp_and_scipy(fitted_2d, two_d):
    model, _ = fitted_2d
    x = two_d[2][:300].astype(np.float32)
    ours = model.log_prob(x).numpy()
    np.testing.assert_allclose(ours, model.distribution().log_prob(x).numpy(), rtol=1e-5, atol=1e-4)
    comp = np.stack([multivariate_normal(m, c).logpdf(x) for m, c in
                     zip(model.means.numpy().astype(np.float64), model.covariances.numpy().astype(np.float64))], 1)
    expected = logsumexp(comp + np.log(model.weights.numpy().astype(np.float64)), axis=1)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-4)


def test_log_prob_batched_in_graph_with_gradients(fitted_2d):
    model, _ = fitted_2d
    t = tf.random.stateless_normal([4, 5, 2], seed=[1, 2]) * 5.0

    @tf.function
    def f(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            lp = model.log_prob(t)
            total = tf.reduce_sum(lp)
        return lp, tape.gradient(total, t)

    lp, grad = f(t)
    assert lp.shape == (4, 5) and grad.shape == (4, 5, 2)
    np.testing.assert_allclose(lp.numpy().ravel(), model.log_prob(tf.reshape(t, [20, 2])).numpy(), rtol=1e-6)
    assert np.all(np.isfinite(grad.numpy()))
    assert model.trainable_variables == ()


@pytest.mark.parametrize("cls,k", [(BayesianGaussianMixture, 5), (GaussianMixtureEM, 5),
                                   (BayesianGaussianMixture, 4)], ids=["vb", "em", "vb-direct-route"])
def test_expected_log_prob_matches_direct_monte_carlo(cls, k):
    """The quadratic-form estimator (K = 5 > (d + 3) / 2; K = 4 takes the direct route) equals
    the density averaged over the same draws: in value against scipy in float64 (tight,
    far-from-origin clusters, where cancellation would show) and in value and gradient
    against elbo.monte_carlo_cross_entropy(log_prob)."""
    x, _ = latent_like(seed=4, d=6, n=3000, n_test=0)
    model = cls(k, 6, seed=0, **({"covariance_jitter": 0.01} if cls is GaussianMixtureEM else {}))
    model.fit(3.0 + 0.1 * x)
    rng = np.random.default_rng(5)
    mean = tf.constant(model.means.numpy()[rng.integers(0, k, 7)] + rng.normal(0, 0.1, (7, 6)), tf.float32)
    std = tf.constant(rng.uniform(0.01, 0.3, (7, 6)), tf.float32)
    seed = tf.constant([3, 9])

    def both(mean, std):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([mean, std])
            fast = model.expected_log_prob(mean, std, 40, seed)
            direct = elbo.monte_carlo_cross_entropy(model.log_prob, mean, std, 40, seed)
            fast_sum, direct_sum = tf.reduce_sum(fast), tf.reduce_sum(direct)
        return fast, direct, tape.gradient(fast_sum, [mean, std]), tape.gradient(direct_sum, [mean, std])

    fast, direct, g_fast, g_direct = tf.function(both)(mean, std)
    points = (mean.numpy()[:, :, None] + std.numpy()[:, :, None]
              * elbo.mc_normal_draws(mean, 40, seed).numpy()).transpose(2, 0, 1).astype(np.float64)
    chol = model.scale_tril.numpy().astype(np.float64)  # what log_prob uses (jitter included)
    comp = np.stack([multivariate_normal(m, c).logpdf(points.reshape(-1, 6)) for m, c in
                     zip(model.means.numpy().astype(np.float64), chol @ chol.transpose(0, 2, 1))], 1)
    expected = logsumexp(comp + np.log(model.weights.numpy().astype(np.float64)), axis=1).reshape(40, 7).mean(0)
    assert np.ptp(expected) > 5.0  # the points spread over low and high density
    np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=2e-3)
    np.testing.assert_allclose(fast, direct, rtol=1e-5, atol=2e-3)
    for a, b in zip(g_fast, g_direct):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * float(np.abs(b).max()))


def test_refit_reuses_variables_and_traces(two_d):
    _, x, x_new = two_d
    model = BayesianGaussianMixture(8, 2, max_iter=30)
    ids = [id(v) for v in model.variables]
    fit_fn = mixture_cavi.fit_function("vb", 8, 2, "float64", True)

    @tf.function
    def score(t):
        return tf.reduce_mean(model.log_prob(t))

    probe = tf.constant(x_new[:50], tf.float32)
    model.fit(x)
    traces, before = fit_fn.experimental_get_tracing_count(), float(score(probe))
    model.fit(x_new[:700])  # another N: no retrace, same variables, new values seen by the graph
    assert fit_fn.experimental_get_tracing_count() == traces
    assert [id(v) for v in model.variables] == ids
    assert score.experimental_get_tracing_count() == 1
    assert float(score(probe)) != before
    np.testing.assert_allclose(float(score(probe)), np.mean(model.log_prob(probe)), rtol=1e-6)


def test_new_mixtures_of_one_shape_share_one_publication_trace(two_d):
    _, x, _ = two_d
    publish = mixture_ops.publish_function(5, 2, "float64")
    models = [BayesianGaussianMixture(5, 2, max_iter=20, seed=s) for s in range(3)]
    models[0].fit(x)
    models[1].fit(x[:300])
    assert publish.experimental_get_tracing_count() == 1
    # what publication wrote: the normalised weights and log_prob's factors from the fit
    m = models[0]
    w, means, cov = (np.asarray(v, np.float64) for v in (m.weights, m.means, m.covariances))
    expected = logsumexp(np.stack([multivariate_normal(mu, c).logpdf(x[:20]) for mu, c in zip(means, cov)], 1)
                         + np.log(w), axis=1)
    np.testing.assert_allclose(m.log_prob(tf.constant(x[:20], tf.float32)).numpy(), expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(models[2].log_prob(tf.zeros([1, 2])).numpy(), [-np.log(2 * np.pi)], rtol=1e-6)


def test_checkpoint_restores_fit_and_warm_start(tmp_path, two_d):
    _, x, x_new = two_d
    model = BayesianGaussianMixture(8, 2, tol=1e-6, max_iter=500, warm_start=True)
    model.fit(x)
    path = tf.train.Checkpoint(mixture=model).save(str(tmp_path / "ckpt"))
    restored = BayesianGaussianMixture(8, 2, tol=1e-6, max_iter=500, warm_start=True)
    tf.train.Checkpoint(mixture=restored).restore(path).assert_consumed()
    assert bool(restored.fitted.numpy())
    np.testing.assert_array_equal(restored.log_prob(x_new[:20]).numpy(), model.log_prob(x_new[:20]).numpy())
    a, b = model.fit(x_new), restored.fit(x_new)
    assert b.n_iter == a.n_iter <= 10
    np.testing.assert_allclose(restored.means.numpy(), model.means.numpy(), rtol=1e-6, atol=1e-6)


def test_saved_model_exports_log_prob(tmp_path, fitted_2d):
    model, _ = fitted_2d
    module = tf.Module()
    module.mixture = model
    module.log_prob = tf.function(model.log_prob, input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    x = tf.random.stateless_normal([7, 2], seed=[0, 1])
    np.testing.assert_allclose(loaded.log_prob(x).numpy(), model.log_prob(x).numpy(), rtol=1e-6)


def test_sample_and_active_views(fitted_2d, two_d):
    model, _ = fitted_2d
    centres = two_d[0]
    s = model.sample(4000, seed=[3, 4]).numpy()
    assert s.shape == (4000, 2) and s.dtype == np.float32
    mean = model.weights.numpy() @ model.means.numpy()
    assert np.all(np.abs(s.mean(0) - mean) < 4 * s.std(0) / np.sqrt(len(s)))
    npz = model.to_npz_dict()
    assert set(npz) == {"w_full", "m_full", "K_full", "w_active", "m_active", "K_active"}
    assert npz["w_full"].shape == (8,) and npz["K_full"].shape == (8, 2, 2)
    assert len(npz["w_active"]) == len(centres) and np.isclose(npz["w_active"].sum(), 1.0)
    active = model.distribution(active_only=True)
    assert active.mixture_distribution.probs_parameter().shape == (len(centres),)
    x = two_d[2][:100].astype(np.float32)
    np.testing.assert_allclose(active.log_prob(x).numpy(), model.log_prob(x).numpy(), atol=0.02)


@pytest.mark.parametrize("cls,jitter", [(BayesianGaussianMixture, 0.0), (GaussianMixtureEM, 0.01)])
def test_reset_to_standard_normal(cls, jitter, fitted_2d):
    model = cls(8, 2, **({"covariance_jitter": jitter} if jitter else {}))
    x = tf.random.stateless_normal([50, 3, 2], seed=[5, 6])
    expected = tfd.MultivariateNormalDiag(tf.zeros(2), tf.fill([2], np.float32(np.sqrt(1.0 + jitter)))).log_prob(x)
    np.testing.assert_allclose(model.log_prob(x).numpy(), expected.numpy(), rtol=1e-5)
    model.fit(np.random.default_rng(0).normal(size=(100, 2)) + 5.0)
    model.reset_to_standard_normal()
    assert not bool(model.fitted.numpy())
    np.testing.assert_allclose(model.log_prob(x).numpy(), expected.numpy(), rtol=1e-5)


def test_fit_result_fields(fitted_2d):
    _, result = fitted_2d
    assert isinstance(result, FitResult) and result.converged and result.seconds > 0
    assert result.lower_bounds.shape == (result.n_iter,) and result.lower_bound == result.lower_bounds[-1]
