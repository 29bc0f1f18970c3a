"""fit_prior on a user's own latents: exact log-densities against scikit-learn, fit quality on a
known 2-D mixture, LaDDer's importance-sampled log p(z) against quadrature of the same model,
save/load round trips."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from ladder_tf.workflows.fit_prior import fit_prior
from ladder_tf.workflows.fitted_prior import FittedPrior, load_prior

sklearn_mixture = pytest.importorskip("sklearn.mixture")

MEANS = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
STD = 0.5  # three well separated round clusters, equal weights
# the true mixture's moments: the mean of the means; the within- plus the between-cluster covariance
TRUE_MEAN = MEANS.mean(0)
TRUE_COV = STD ** 2 * np.eye(2) + np.cov(MEANS.T, bias=True)
# small prior VAE, more steps: what 2,000 latents need (the defaults take 7 steps per epoch)
SMALL_LADDER = dict(epochs=60, batch_size=64, n_layers_inner_VAE=2, num_hidden_units_inner_VAE=128,
                    n_MC_samples=20, n_components=10)


def draw(n, seed):
    rng = np.random.default_rng(seed)
    return (MEANS[rng.integers(0, 3, n)] + STD * rng.normal(size=(n, 2))).astype(np.float32)


def true_log_prob(x):
    return logsumexp([np.log(1 / 3) + multivariate_normal(m, STD ** 2 * np.eye(2)).logpdf(x) for m in MEANS], axis=0)


@pytest.fixture(scope="module")
def data():
    return draw(2000, 0), draw(1000, 1)


@pytest.fixture(scope="module")
def mixtures(data):
    train, _ = data
    return {"gmm": fit_prior(train, "gmm", n_components=3), "dp-gmm": fit_prior(tf.constant(train), "dp-gmm")}


@pytest.fixture(scope="module")
def ladder(data):
    return fit_prior(data[0], "ladder", **SMALL_LADDER)


def sklearn_mixture_of(prior):
    """scikit-learn's GaussianMixture holding the fitted weights, means and covariances."""
    m = prior.density
    w, mu, cov = m.weights.numpy(), m.means.numpy(), m.covariances.numpy()
    sk = sklearn_mixture.GaussianMixture(len(w), covariance_type="full")
    sk.weights_, sk.means_, sk.covariances_ = w.astype(np.float64), mu.astype(np.float64), cov.astype(np.float64)
    sk.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(sk.covariances_))
    return sk


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log")  # sklearn: dead components
@pytest.mark.parametrize("kind", ["gmm", "dp-gmm"])
def test_mixture_log_prob_is_exact(mixtures, data, kind):
    prior = mixtures[kind]
    assert not prior.log_prob_is_estimate and prior.dim == 2
    _, test = data
    ref = sklearn_mixture_of(prior).score_samples(test.astype(np.float64))
    np.testing.assert_allclose(prior.log_prob(test), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(prior.log_prob(test), prior.log_prob(test, n_samples=7, seed=3))


@pytest.mark.parametrize("kind", ["gmm", "dp-gmm"])
def test_mixture_fit_quality(mixtures, data, kind):
    prior = mixtures[kind]
    _, test = data
    assert abs(prior.log_prob(test).mean() - true_log_prob(test).mean()) < 0.05
    samples = prior.sample(20000, seed=1)
    assert samples.shape == (20000, 2) and samples.dtype == np.float32
    np.testing.assert_allclose(samples.mean(0), TRUE_MEAN, atol=0.08)
    np.testing.assert_allclose(np.cov(samples.T), TRUE_COV, atol=0.25)
    assert prior.history[0]["active_components"] == 3  # dp-gmm: 3 of its 50 components


def test_ladder_fit_quality(ladder, data):
    _, test = data
    assert ladder.log_prob_is_estimate and ladder.config.representation_size == 2
    estimate = ladder.log_prob(test, n_samples=1000)
    assert abs(estimate.mean() - true_log_prob(test).mean()) < 0.15
    samples = ladder.sample(20000, seed=1)
    np.testing.assert_allclose(samples.mean(0), TRUE_MEAN, atol=0.15)
    np.testing.assert_allclose(np.cov(samples.T), TRUE_COV, rtol=0.1, atol=0.1)
    means = ladder.sample(500, seed=1, noise=False)  # the decoder means: the package's samples
    np.testing.assert_array_equal(means, ladder.density.sample(500, 1).numpy())
    noise = ladder.sample(500, seed=1) - means  # z ~ N(mu(t), s^2 I): s is the inner sigma
    assert abs(np.std(noise) / float(ladder.density.effective_inner_sigma()) - 1) < 0.1
    rows = ladder.history
    assert [r["epoch"] for r in rows] == list(range(1, 61))
    assert rows[-1]["objective"] > rows[0]["objective"] + 100  # L'(z) climbed
    assert rows[-1]["accurate_fit_converged"] == 1 and "accurate_fit_samples" not in rows[0]


def quadrature_log_prob(prior, z, grid=600):
    """log int N(z; mu(t), s^2 I) p(t) dt of the fitted LaDDer prior, by a rectangle rule over a
    grid of t covering the accurate mixture's components to 6 standard deviations."""
    d, m = prior.density, prior.density.accurate
    keep = m.weights.numpy() > 1e-3
    means, sd = m.means.numpy()[keep], np.sqrt(np.diagonal(m.covariances.numpy()[keep], axis1=1, axis2=2))
    lo, hi = (means - 6 * sd).min(0), (means + 6 * sd).max(0)
    axes = [np.linspace(lo[i], hi[i], grid) for i in range(2)]
    t = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2).astype(np.float32)
    log_cell = np.log((axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0]))
    mu = d.decode(tf.constant(t)).numpy().astype(np.float64)
    log_pt = d.log_prob_t(tf.constant(t)).numpy().astype(np.float64)
    s = float(d.effective_inner_sigma())
    return np.array([logsumexp(multivariate_normal(x, s ** 2 * np.eye(2)).logpdf(mu) + log_pt) + log_cell
                     for x in z])


def test_ladder_estimate_converges_to_the_models_density(ladder, data):
    z = data[1][:40]
    exact = quadrature_log_prob(ladder, z)
    assert abs(np.mean(exact - quadrature_log_prob(ladder, z, grid=400))) < 1e-3  # the grid is fine enough
    errors = [np.abs(ladder.log_prob(z, n_samples=s, seed=2) - exact).max() for s in (1, 10, 100, 2000)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.05, errors
    np.testing.assert_array_equal(ladder.log_prob(z, n_samples=50, seed=2), ladder.log_prob(z, n_samples=50, seed=2))
    in_memory = ladder.density.log_prob_estimate(tf.constant(z), 50, 2).numpy()  # eager, Python ints
    np.testing.assert_allclose(ladder.log_prob(z, n_samples=50, seed=2), in_memory, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kind", ["gmm", "dp-gmm", "ladder"])
def test_save_load_round_trip(kind, mixtures, ladder, data, tmp_path):
    prior = ladder if kind == "ladder" else mixtures[kind]
    path = tmp_path / "sub" / f"{kind}.npz"
    prior.save(path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    with np.load(path, allow_pickle=False) as f:  # plain arrays and one JSON string
        assert all(f[k].dtype != object for k in f.files)
    loaded = load_prior(path)
    assert isinstance(loaded, FittedPrior) and loaded.kind == kind and loaded.config == prior.config
    assert loaded.history == prior.history and loaded.log_prob_is_estimate == (kind == "ladder")
    z = data[1][:200]
    np.testing.assert_array_equal(loaded.log_prob(z, n_samples=20, seed=4), prior.log_prob(z, n_samples=20, seed=4))
    np.testing.assert_array_equal(loaded.sample(300, seed=5), prior.sample(300, seed=5))
    assert not np.array_equal(loaded.sample(300, seed=6), prior.sample(300, seed=5))


def test_bad_input_is_one_clear_error(tmp_path, data):
    train = data[0]
    for args, message in [((train, "flow"), "kind must be one of ladder, gmm, dp-gmm"),
                          ((train[:, 0], "gmm"), r"latents must have shape \(N, d\)"),
                          ((np.where(np.arange(2000)[:, None] == 5, np.nan, train), "gmm"), "NaN or inf in 1 rows"),
                          ((train[:20], "dp-gmm"), "20 latents are too few for 50 mixture components")]:
        with pytest.raises(ValueError, match=message):
            fit_prior(*args)
    with pytest.raises(ValueError, match="unknown config key 'n_mixturs'"):
        fit_prior(train, "gmm", n_mixturs=3)
    prior = fit_prior(train[:100], "gmm", n_components=2)
    with pytest.raises(ValueError, match=r"z must have shape \(N, 2\)"):
        prior.log_prob(np.zeros((3, 4)))
    (tmp_path / "other.npz").write_bytes(b"not a prior")
    with pytest.raises(ValueError, match="is not a prior saved by FittedPrior.save"):
        load_prior(tmp_path / "other.npz")
