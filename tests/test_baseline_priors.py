"""The GMM prior and the VampPrior against independent references (tfp, scipy, closed forms)."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import special, stats

from ladder_tf import config as config_lib
from ladder_tf.model import elbo
from ladder_tf.model.mixture import GaussianMixtureEM
from ladder_tf.model.priors.gmm import GMMPrior
from ladder_tf.model.priors.vamp import VampPrior
from ladder_tf.workflows import reporter
from ladder_tf.workflows.build import build_model, make_checkpoint

tfd = tfp.distributions
D_Z, K, S = 4, 3, 8
CENTRES = np.array([[4.0, 0, 0, 0], [-4.0, 0, 0, 0], [0, 0, 5.0, -5.0]], np.float32)


def tiny_cfg(prior: str, **kw) -> config_lib.Config:
    values = dict(prior=prior, code_size=D_Z, num_hidden_units=64, n_mixtures=K, n_MC_samples=S,
                  fast_fit_samples=300, accurate_fit_samples=600, num_epochs=3, sg_pretraining=1,
                  seed=0)
    values.update(kw)
    return config_lib.from_dict(values)


def make(prior: str, **kw):
    vae, p = build_model(tiny_cfg(prior, **kw))
    p.build()
    return vae, p


def posterior(seed: int = 0, batch: int = 6) -> tuple[tf.Tensor, tf.Tensor]:
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(batch, D_Z)).astype(np.float32)
    std = rng.uniform(0.2, 1.0, size=(batch, D_Z)).astype(np.float32)
    return tf.constant(mean), tf.constant(std)


def clustered_sample_z(calls: list | None = None):
    """A sample_z stand-in: n draws from three well-separated clusters (CENTRES)."""
    def sample_z(n: int, seed: int) -> tf.Tensor:
        if calls is not None:
            calls.append(n)
        rng = np.random.default_rng(seed)
        return tf.constant(CENTRES[rng.integers(0, K, n)] + 0.3 * rng.normal(size=(n, D_Z)), tf.float32)
    return sample_z


def mc_draws(mean, std, seed):
    """The points the Monte-Carlo cross-entropies evaluate: (S, B, d)."""
    eps = tf.transpose(elbo.mc_normal_draws(tf.constant(mean, tf.float32), S, seed), [2, 0, 1])
    return (mean[None] + std[None] * eps).numpy()


@pytest.fixture(scope="module")
def gmm():
    _, p = make("gmm")
    p.end_of_epoch(clustered_sample_z(), 1)
    return p


@pytest.fixture(scope="module")
def vamp():
    return make("vampprior")


# -- both priors -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gmm", "vampprior"])
def test_samples_shape_and_seeding(name):
    _, p = make(name)
    a, b, c = p.sample(50, 3), p.sample(50, 3), p.sample(50, 4)
    assert a.shape == (50, D_Z) and bool(tf.reduce_all(tf.math.is_finite(a)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert p.log_prob(a).shape == (50,)


@pytest.mark.parametrize("name", ["gmm", "vampprior"])
def test_cross_entropy_finite_and_differentiable(name):
    _, p = make(name)
    p.begin_epoch(2)  # past pre-training: the prior's own term
    mean, std = posterior()
    with tf.GradientTape() as tape:
        tape.watch([mean, std])
        value = p.prior_terms(mean, mean, std, tf.constant([1, 2])).elbo_term
    g_mean, g_std = tape.gradient(value, [mean, std])
    assert value.shape == (6,) and np.all(np.isfinite(value))
    for g in (g_mean, g_std):
        assert g is not None and np.all(np.isfinite(g)) and np.any(np.abs(g) > 0)


@pytest.mark.parametrize("name", ["gmm", "vampprior"])
def test_checkpoint_restore_gives_identical_samples(name, tmp_path):
    vae, p = make(name)
    if name == "gmm":
        p.end_of_epoch(clustered_sample_z(), 1)
    else:
        p.begin_epoch(2)
        mean, std = posterior()
        p.own_step(mean, std, tf.constant([0, 1]))
    path = make_checkpoint(vae, p).save(str(tmp_path / "ckpt"))
    vae2, p2 = make(name, seed=5)  # a different initialisation, overwritten by the restore
    assert not np.allclose(p.sample(20, 7), p2.sample(20, 7))
    make_checkpoint(vae2, p2).restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(p.sample(20, 7), p2.sample(20, 7))
    z = p.sample(20, 8)
    np.testing.assert_allclose(p.log_prob(z), p2.log_prob(z), rtol=1e-6)


# -- GMM -------------------------------------------------------------------------------------
def test_gmm_starts_as_unit_gaussians_with_jitter():
    _, p = make("gmm")
    assert not p.uses_pretraining
    z = np.random.default_rng(1).normal(size=(7, D_Z)).astype(np.float32)
    ref = stats.multivariate_normal(np.zeros(D_Z), 1.01 * np.eye(D_Z)).logpdf(z)
    np.testing.assert_allclose(p.log_prob(z), ref, rtol=1e-5)
    # The MC cross-entropy converges to the closed form E_q[log N(z; 0, 1.01 I)].
    _, big = make("gmm", n_MC_samples=20000)
    mean, std = posterior()
    mc = big.prior_terms(mean, mean, std, tf.constant([3, 4])).elbo_term
    closed = (-0.5 * D_Z * np.log(2 * np.pi * 1.01)
              - 0.5 * np.sum(mean.numpy() ** 2 + std.numpy() ** 2, axis=1) / 1.01)
    np.testing.assert_allclose(mc, closed, atol=0.08)


def test_gmm_cross_entropy_matches_tfp_mixture(gmm):
    mean, std = posterior(2)
    seed = tf.constant([5, 6])
    ours = gmm.objective(mean, mean, std, seed)[0]
    m = gmm.mixture
    cov = m.covariances.numpy().astype(np.float64) + 0.01 * np.eye(D_Z)  # the jitter in the loss
    ref_dist = tfd.MixtureSameFamily(
        tfd.Categorical(probs=m.weights.numpy().astype(np.float64)),
        tfd.MultivariateNormalTriL(m.means.numpy().astype(np.float64), np.linalg.cholesky(cov)))
    z = mc_draws(mean, std, seed).astype(np.float64)
    ref = tf.reduce_mean(ref_dist.log_prob(z), axis=0)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_gmm_refit_moves_mixture_to_the_data():
    _, p = make("gmm")
    calls = []
    sample_z = clustered_sample_z(calls)
    z = sample_z(500, 99)
    before = float(tf.reduce_mean(p.log_prob(z)))
    m1 = p.end_of_epoch(sample_z, 1)
    after = float(tf.reduce_mean(p.log_prob(z)))
    assert after > before + 5.0
    assert m1["gmm_log_prob_after"] > m1["gmm_log_prob_before"]
    # Each cluster centre is matched by a fitted mean, with about a third of the weight.
    means = p.mixture.means.numpy()
    nearest = np.argmin(((CENTRES[:, None] - means[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(means[nearest], CENTRES, atol=0.15)
    np.testing.assert_allclose(p.mixture.weights.numpy()[nearest], 1 / 3, atol=0.08)
    # Fast fits (warm-started) until the last epoch, then the accurate fit on more samples,
    # each in whole batches as the original: (n // batch + 1) * batch codes.
    m2 = p.end_of_epoch(sample_z, 2)
    m3 = p.end_of_epoch(sample_z, 3)
    b = p.cfg.batch_size
    assert calls[1:] == [(300 // b + 1) * b, (300 // b + 1) * b, (600 // b + 1) * b]
    assert (m1["gmm_accurate_fit"], m2["gmm_accurate_fit"], m3["gmm_accurate_fit"]) == (0, 0, 1)
    # the final fit starts afresh (one initialisation), not from the previous fit
    fresh = GaussianMixtureEM(p.cfg.n_mixtures, D_Z, max_iter=p.cfg.accurate_fit_max_iter,
                              covariance_jitter=0.01, seed=p.cfg.seed)
    fresh.fit(sample_z(calls[-1], 3))
    np.testing.assert_allclose(p.mixture.means.numpy(), fresh.means.numpy(), atol=1e-4)


def test_gmm_samples_without_the_loss_jitter(gmm):
    """Samples and figures use the fitted covariances; the 0.01 jitter is the loss's only."""
    fitted = gmm.mixture.distribution(jitter=False)
    np.testing.assert_allclose(fitted.components_distribution.covariance(),
                               gmm.mixture.covariances.numpy(), rtol=1e-4, atol=1e-5)
    jittered = gmm.mixture.distribution().components_distribution.covariance().numpy()
    np.testing.assert_allclose(jittered - gmm.mixture.covariances.numpy(),
                               np.broadcast_to(0.01 * np.eye(D_Z), jittered.shape), atol=1e-5)
    np.testing.assert_array_equal(gmm.sample(50, 4), fitted.sample(50, seed=tf.constant([4, 0])))


def test_gmm_artifacts(gmm, tmp_path):
    path = reporter.write_mixture(str(tmp_path), 4, gmm.mixture_arrays(4))
    assert path == os.path.join(str(tmp_path), "mixture", "mixture_e004.npz")
    with np.load(path) as npz:
        np.testing.assert_allclose(npz["w_full"], gmm.mixture.weights.numpy())
        np.testing.assert_allclose(npz["K_full"], gmm.mixture.covariances.numpy())
        assert npz["m_active"].shape[1] == D_Z and float(npz["covariance_jitter"]) == 0.01
    assert [f for f in os.listdir(tmp_path / "mixture")] == ["mixture_e004.npz"]  # no temp left


def test_gmm_density_figure_for_2d_codes(tmp_path):
    _, p = make("gmm", code_size=2)
    z = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    (fig,) = p.figure_data(z)
    fitted = p.mixture.distribution(jitter=False)  # drawn without the loss's jitter
    grid = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_allclose(fig.log_prob(grid), fitted.log_prob(grid), rtol=1e-6)
    np.testing.assert_array_equal(fig.points, z)
    np.testing.assert_array_equal(fig.covariances, p.mixture.covariances.numpy())
    path = reporter.draw_prior_figure(str(tmp_path), 1, fig, np.arange(40) % 10)
    assert path == os.path.join(str(tmp_path), "figures", "gmm_density_e001.png")
    assert os.path.getsize(path) > 1000
    assert make("gmm")[1].figure_data(np.zeros((40, D_Z), np.float32)) == []


# -- VampPrior -----------------------------------------------------------------------------
def test_vamp_cross_entropy_matches_explicit_logsumexp(vamp):
    vae, p = vamp
    p.begin_epoch(2)
    mean, std = posterior(3)
    seed = tf.constant([7, 8])
    ours = p.objective(mean, mean, std, seed)[0]
    mu, sd = (t.numpy().astype(np.float64) for t in vae.encoder(p.pseudo_inputs.numpy()))
    z = mc_draws(mean, std, seed).astype(np.float64)                    # (S, B, d)
    comp = stats.norm.logpdf(z[:, :, None, :], mu[None, None], sd[None, None]).sum(-1)  # (S, B, K)
    ref = (special.logsumexp(comp, axis=-1) - np.log(K)).mean(0)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3)
    assert p.pseudo_inputs.shape == (K, 28, 28, 1)


def test_vamp_pretraining_schedule(vamp):
    _, p = vamp
    mean, std = posterior(4)
    p.begin_epoch(1)  # sg_pretraining = 1: the standard normal in the data ELBO
    np.testing.assert_allclose(p.prior_terms(mean, mean, std, tf.constant([0, 0])).elbo_term,
                               elbo.standard_normal_cross_entropy(mean, std), rtol=1e-6)
    p.begin_epoch(2)
    np.testing.assert_allclose(p.prior_terms(mean, mean, std, tf.constant([0, 0])).elbo_term,
                               p.objective(mean, mean, std, tf.constant([0, 0]))[0], rtol=1e-6)


def test_vamp_own_step_moves_only_pseudo_inputs_uphill():
    vae, p = make("vampprior", learning_rate_prior=1e-4)
    p.begin_epoch(2)
    mean, std = posterior(5)
    seed = tf.constant([9, 9])
    enc_before = [v.numpy() for v in vae.encoder.trainable_variables]
    u_before = p.pseudo_inputs.numpy()
    obj_before = float(tf.reduce_mean(p.objective(mean, mean, std, seed)[0]))
    assert bool(p.own_step(mean, std, seed))
    assert not np.allclose(p.pseudo_inputs.numpy(), u_before)
    for a, b in zip(enc_before, vae.encoder.trainable_variables):
        np.testing.assert_array_equal(a, b.numpy())
    assert float(tf.reduce_mean(p.objective(mean, mean, std, seed)[0])) > obj_before


def test_vamp_prior_term_depends_on_the_encoder(vamp):
    """In the data VAE's step the encoder also gets gradient through the pseudo-inputs."""
    vae, p = vamp
    p.begin_epoch(2)
    mean, std = posterior(6)
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(p.prior_terms(mean, mean, std, tf.constant([1, 1])).elbo_term)
    grads = tape.gradient(value, vae.encoder.trainable_variables)
    assert any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    assert all(np.all(np.isfinite(g)) for g in grads if g is not None)


def test_vamp_is_not_tracking_the_vae(vamp):
    vae, p = vamp
    assert [v.name for v in p.trainable_variables] == [p.pseudo_inputs.name]
    with pytest.raises(ValueError, match="needs the data VAE"):
        VampPrior(tiny_cfg("vampprior"))


def test_vamp_figure(vamp, tmp_path):
    _, p = vamp
    (fig,) = p.figure_data(np.zeros((4, D_Z)))
    np.testing.assert_array_equal(fig.images, p.pseudo_inputs.numpy())  # K = 3 < the 100 shown
    path = reporter.draw_prior_figure(str(tmp_path), 2, fig, np.arange(4))
    assert path.endswith("pseudo_inputs_e002.png") and os.path.getsize(path) > 100


def test_registry_builds_the_baseline_priors():
    assert isinstance(make("gmm")[1], GMMPrior)
    assert isinstance(make("vampprior")[1], VampPrior)


@pytest.mark.parametrize("count", [False, True])
def test_vamp_pretraining_steps_move_only_adams_counter(count):
    """``count_pretraining_prior_steps``: in epoch sg_pretraining the authors' pseudo-input Adam
    takes zero-gradient steps, so its first real step lacks the bias correction's boost.

    Reference: Adam's update written out with numpy (beta1 0.9, beta2 0.95, TF1 epsilon).
    """
    lr, idle_steps = 1e-3, 3
    vae, p = make("vampprior", learning_rate_prior=lr, lr_growth_prior=1.0, sg_pretraining=2,
                  count_pretraining_prior_steps=count)
    opt = p.prior_optimizers[0]
    mean, std = posterior(7)
    p.begin_epoch(2)  # active, data ELBO still N(0, I)
    u0 = p.pseudo_inputs.numpy()
    for i in range(idle_steps):
        assert bool(p.own_step(mean, std, tf.constant([i, 0])))
    np.testing.assert_array_equal(p.pseudo_inputs.numpy(), u0)
    assert int(opt.iterations) == (idle_steps if count else 0)

    p.begin_epoch(3)
    seed = tf.constant([5, 5])
    z_seed, objective_seed = tf.unstack(tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(seed, 0), 2))
    with tf.GradientTape() as tape:
        z = elbo.reparameterise(mean, std, z_seed)
        loss = tf.reduce_mean(-p.objective(z, mean, std, objective_seed)[0])
    g = np.clip(tape.gradient(loss, p.pseudo_inputs).numpy().astype(np.float64), -1.0, 1.0)
    assert bool(p.own_step(mean, std, seed))
    t = int(opt.iterations)
    assert t == (idle_steps + 1 if count else 1)
    m, v = 0.1 * g, 0.05 * g ** 2  # one real gradient after zero ones (zero moments)
    alpha = lr * np.sqrt(1 - 0.95 ** t) / (1 - 0.9 ** t)
    expected = u0 - alpha * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(p.pseudo_inputs.numpy(), expected, rtol=1e-4, atol=1e-7)
    big = np.abs(g) > 1e-4  # the step relative to lr: 1 fresh; smaller after the idle steps
    ratio = np.abs(u0 - p.pseudo_inputs.numpy())[big] / lr
    np.testing.assert_allclose(ratio, 1.0 if not count else
                               np.sqrt(1 - 0.95 ** 4) / (1 - 0.9 ** 4) * 0.1 / np.sqrt(0.05), rtol=2e-2)


@pytest.mark.parametrize("init", ["normal", "data"])
def test_vamp_pseudo_inputs_start(tmp_path, init):
    """``pseudo_inputs_init``: N(0, 1) noise (the paper) or K distinct training images, set once
    by a new run and kept by a resumed one."""
    from synthetic import synthetic_data
    from ladder_tf.data import to_float
    from ladder_tf.workflows import training

    cfg = tiny_cfg("vampprior", pseudo_inputs_init=init, batch_size=16, test_batch_size=20, num_epochs=1,
                   steps_per_epoch=1)
    data = synthetic_data()
    trainer = training.Trainer(cfg, data, str(tmp_path), show_progress=False)
    trainer.restore()
    u = trainer.prior.pseudo_inputs.numpy()
    if init == "normal":
        np.testing.assert_array_equal(u, tf.random.stateless_normal(u.shape, seed=[0, 1]).numpy())
    else:
        images = to_float(data.x_train).reshape(len(data.x_train), -1)
        matches = [np.flatnonzero(np.all(images == row, axis=1)) for row in u.reshape(K, -1)]
        assert all(len(m) >= 1 for m in matches)
        assert len({int(m[0]) for m in matches}) == K
    trainer.prior.pseudo_inputs.assign(u + 1.0)
    trainer.save_checkpoint()
    resumed = training.Trainer(cfg, data, str(tmp_path), show_progress=False)
    resumed.restore()
    np.testing.assert_array_equal(resumed.prior.pseudo_inputs.numpy(), u + 1.0)
