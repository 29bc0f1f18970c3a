"""The prior-VAE priors `ladder` and `hierarchical`: networks, every term of L'(z) against
tfp, block-coordinate updates, the end-of-epoch refit, outputs, checkpoints, e2e."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from ladder_tf.model import elbo
from ladder_tf.workflows import training
from ladder_tf.config import from_dict
from ladder_tf.data import load_dataset
from ladder_tf.data.mnist import DEBIAN_FASHION_DIR
from ladder_tf.model.networks.prior_vae import build_prior_decoder, build_prior_encoder
from ladder_tf.model.priors import build_prior
from ladder_tf.workflows.runs import load_run
from synthetic import synthetic_data

tfd = tfp.distributions
HAVE_FASHION = os.path.isdir(DEBIAN_FASHION_DIR)
TINY = {"prior": "ladder", "code_size": 4, "representation_size": 2, "n_layers_inner_VAE": 2,
        "num_hidden_units_inner_VAE": 32, "n_MC_samples": 8, "n_mixtures": 5, "num_hidden_units": 64,
        "batch_size": 16, "num_epochs": 2, "sg_pretraining": 1, "accurate_fit": 2,
        "fast_fit_samples": 200, "accurate_fit_samples": 300, "fast_fit_max_iter": 200,
        "accurate_fit_max_iter": 300, "test_batch_size": 20, "checkpoint_every_steps": 100}


def tiny(**updates):
    return from_dict({**TINY, **updates})


def clusters(n, dim, seed=0, spread=3.0):
    """Three well separated Gaussian blobs in ``dim`` dimensions, float32 (n, dim)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim)) * spread
    return (centres[rng.integers(0, 3, n)] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def values(variables):
    return [v.numpy().copy() for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def mixture_variables(prior):
    return list(prior.fast.variables) + list(prior.accurate.variables) if hasattr(prior, "fast") else []


def reference_mixture(m):
    """The fitted mixture as an independent tfp distribution (from weights/means/covariances)."""
    return tfd.MixtureSameFamily(tfd.Categorical(probs=m.weights),
                                 tfd.MultivariateNormalTriL(m.means, tf.linalg.cholesky(m.covariances)))


# -- networks ------------------------------------------------------------------------
def test_prior_networks_match_a_numpy_forward_pass():
    cfg = tiny(n_layers_inner_VAE=3, inner_activation="leaky_relu", representation_size=3)
    enc, dec = build_prior_encoder(cfg), build_prior_decoder(cfg)
    z = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)

    def trunk(x, dense_weights):
        for w, b in dense_weights:
            x = x @ w + b
            x = np.where(x > 0, x, 0.2 * x)  # leaky ReLU slope 0.2
        return x

    ws = [v.numpy() for v in enc.trainable_variables]
    pairs = list(zip(ws[0::2], ws[1::2]))
    assert len(pairs) == 3 + 2  # three hidden layers, mean and std heads
    h = trunk(z, pairs[:3])
    mean, std = enc(z)
    np.testing.assert_allclose(mean, h @ pairs[3][0] + pairs[3][1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, np.maximum(h @ pairs[4][0] + pairs[4][1], 0) + 1e-3, rtol=1e-5, atol=1e-5)
    assert [w.shape for w, _ in pairs] == [(4, 32), (32, 32), (32, 32), (32, 3), (32, 3)]

    ws = [v.numpy() for v in dec.trainable_variables]
    pairs = list(zip(ws[0::2], ws[1::2]))
    t = mean.numpy()
    np.testing.assert_allclose(dec(t), trunk(t, pairs[:3]) @ pairs[3][0] + pairs[3][1], rtol=1e-5, atol=1e-5)
    assert pairs[-1][0].shape == (32, 4)


# -- the objective ---------------------------------------------------------------------
def test_ladder_objective_terms_match_tfp_with_mask():
    cfg = tiny(use_mask_start=3)
    prior = build_prior(cfg, None)
    prior.fast.fit(clusters(400, 2))
    prior.inner_sigma.assign(0.07)
    rng = np.random.default_rng(1)
    z = rng.normal(size=(6, 4)).astype(np.float32)
    std = rng.uniform(0.2, 1.6, size=(6, 4)).astype(np.float32)
    seed = tf.constant([3, 4])
    t_seed, mc_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    t_mean, t_std = prior.encoder(z)
    q_t = tfd.MultivariateNormalDiag(t_mean, t_std)
    t = t_mean + t_std * tf.random.stateless_normal(t_mean.shape, t_seed)
    eps = tf.transpose(elbo.mc_normal_draws(t_mean, cfg.n_MC_samples, mc_seed), [2, 0, 1])
    ref_ce = tf.reduce_mean(reference_mixture(prior.fast).log_prob(t_mean + t_std * eps), axis=0)
    log_lik = tfd.Normal(prior.decoder(t), 0.07).log_prob(z).numpy()  # (6, 4)

    for epoch, masked in ((2, False), (3, True)):
        prior.begin_epoch(epoch)
        value, metrics = prior.objective(z, tf.zeros_like(z), std, seed)
        if masked:  # masked dims keep only the normaliser -log s - 0.5 log 2 pi
            log_lik_used = np.where(std > 1, tfd.Normal(0.0, 0.07).log_prob(0.0).numpy(), log_lik)
        else:
            log_lik_used = log_lik
        ref = {"code_reconstruction": log_lik_used.sum(-1), "t_entropy": q_t.entropy(),
               "t_cross_entropy": ref_ce}
        for key, expected in ref.items():
            np.testing.assert_allclose(metrics[key], np.mean(expected), rtol=1e-4, atol=1e-4, err_msg=key)
        np.testing.assert_allclose(value, sum(ref.values()), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(metrics["inner_sigma"], 0.07, rtol=1e-6)
    assert (std > 1).any() and (std <= 1).any()


def test_ladder_cross_entropy_converges_to_the_expectation():
    """The MC cross-entropy is unbiased: many draws agree with a large tfp sample."""
    prior = build_prior(tiny(n_MC_samples=4000), None)
    prior.fast.fit(clusters(400, 2, seed=2))
    t_mean, t_std = tf.constant([[0.5, -1.0]]), tf.constant([[0.8, 0.3]])
    mc = prior.t_cross_entropy(t_mean, t_std, tf.constant([0, 1]))
    draws = tfd.MultivariateNormalDiag(t_mean[0], t_std[0]).sample(40000, seed=[5, 6])
    np.testing.assert_allclose(mc[0], tf.reduce_mean(reference_mixture(prior.fast).log_prob(draws)),
                               atol=0.1)


def test_hierarchical_terms_for_three_dimensional_t():
    cfg = tiny(prior="hierarchical", representation_size=3, use_mask_start=1)
    prior = build_prior(cfg, None)
    prior.begin_epoch(5)  # past use_mask_start: hierarchical never masks
    rng = np.random.default_rng(2)
    z = rng.normal(size=(7, 4)).astype(np.float32)
    std = np.full((7, 4), 2.0, np.float32)
    seed = tf.constant([8, 9])
    value, metrics = prior.objective(z, tf.zeros_like(z), std, seed)
    t_seed, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    t_mean, t_std = prior.encoder(z)
    q_t = tfd.MultivariateNormalDiag(t_mean, t_std)
    p_t = tfd.MultivariateNormalDiag(tf.zeros(3))
    t = t_mean + t_std * tf.random.stateless_normal(t_mean.shape, t_seed)
    entropy = q_t.entropy()
    ce = -(tfd.kl_divergence(q_t, p_t) + entropy)  # E_q[log p] = -KL - H
    recon = tfd.MultivariateNormalDiag(prior.decoder(t), tf.fill([4], 0.1)).log_prob(z)
    np.testing.assert_allclose(metrics["t_entropy"], tf.reduce_mean(entropy), rtol=1e-5)
    np.testing.assert_allclose(metrics["t_cross_entropy"], tf.reduce_mean(ce), rtol=1e-5)
    np.testing.assert_allclose(value, recon + entropy + ce, rtol=1e-5, atol=1e-4)
    # the d_t = 3 entropy in closed form (the original hard-coded d_t = 2)
    np.testing.assert_allclose(entropy, 1.5 * (np.log(2 * np.pi) + 1) + np.log(t_std).sum(-1), rtol=1e-5)
    samples = prior.sample_t(20000, seed=1).numpy()
    np.testing.assert_allclose(samples.mean(0), 0, atol=0.03)
    np.testing.assert_allclose(np.cov(samples.T), np.eye(3), atol=0.04)


def test_inner_sigma_is_absolute_and_clipped_only_when_trained():
    prior = build_prior(tiny(), None)
    for raw, expected in ((-0.3, 0.1), (0.01, 0.05), (-0.07, 0.07)):
        prior.inner_sigma.assign(raw)
        np.testing.assert_allclose(prior.effective_inner_sigma(), expected, rtol=1e-6)
    fixed = build_prior(tiny(TRAIN_inner_sigma=0, inner_sigma=0.3, inner_sigma_ub=0.4), None)
    np.testing.assert_allclose(fixed.effective_inner_sigma(), 0.3, rtol=1e-6)
    assert [g.optimizer.name for g in fixed._groups] == ["adam_prior_vae"]
    assert not fixed.inner_sigma.trainable


# -- block coordinate ascent -----------------------------------------------------------
@pytest.mark.parametrize("prior_name", ["ladder", "hierarchical"])
def test_data_step_and_prior_step_touch_only_their_own_blocks(tmp_path, prior_name):
    cfg = tiny(prior=prior_name, sg_pretraining=1)
    trainer = training.Trainer(cfg, synthetic_data(), str(tmp_path), show_progress=False)
    trainer.restore()
    prior, vae = trainer.prior, trainer.vae
    prior.begin_epoch(1)
    prior.end_of_epoch(trainer.sample_training_z, 1)  # a fitted, non-trivial hyper prior
    trainer.begin_epoch(2)  # past pre-training: the data ELBO uses L'
    x = tf.constant(synthetic_data().x_train[:16], tf.float32) / 255.0
    seed = tf.constant([0, 5], tf.int64)

    # the data ELBO's prior term is L'(z) of the sampled z, differentiable in the encoder
    with tf.GradientTape() as tape:
        out = vae.elbo_terms(x, prior, tf.constant([1, 2]), training=True)
        terms, z, mean, std = out.terms, out.z, out.mean, out.std
    _, prior_seed = tf.unstack(tf.random.experimental.stateless_split(tf.constant([1, 2]), 2))
    np.testing.assert_allclose(terms["cross_entropy"], prior.objective(z, mean, std, prior_seed)[0],
                               rtol=1e-5, atol=1e-4)
    grads = tape.gradient(terms["cross_entropy"], vae.encoder.trainable_variables)
    assert all(g is not None and np.any(g.numpy() != 0) for g in grads[-4:])

    # the fused step's two blocks: the data VAE's gradient is that of -ELBO with the prior
    # fixed, the prior's is that of -L'(z) with z, mean, std (the data VAE) held fixed
    prior_vars = list(prior.trainable_variables) + mixture_variables(prior)
    vae_vars = list(vae.network_variables)  # sigma may sit on its floor (zero gradient)
    for pretraining in (False, True):
        prior.pretraining.assign(pretraining)
        _, _, data_grads, prior_grads = trainer.block_step.fused_gradients(x, tf.constant([1, 2]))
        with tf.GradientTape(persistent=True) as tape:
            out = vae.elbo_terms(x, prior, tf.constant([1, 2]), training=True)
            terms, z, mean, std = out.terms, out.z, out.mean, out.std
            data_loss = -tf.reduce_mean(terms["elbo"])
            held = [tf.stop_gradient(t) for t in (z, mean, std)]
            prior_loss = -tf.reduce_mean(prior.objective(*held, prior_seed)[0])
        for got, want in zip(data_grads, tape.gradient(data_loss, vae_vars + [vae.sigma])):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        flat = [g for gs in prior_grads for g in gs]
        want = tape.gradient(prior_loss, [v for vs in prior.variable_groups() for v in vs])
        for got, w in zip(flat, want):
            np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-6)
        assert any(np.any(g.numpy() != 0) for g in flat)
    prior.pretraining.assign(False)
    before_prior, before_vae = values(mixture_variables(prior)), values(vae_vars)
    trainer.train_step(x, seed)
    assert not any(changed(before_prior, mixture_variables(prior)))  # xi moves only at refits
    assert all(changed(before_vae, vae_vars))

    # prior step alone: alpha, beta and inner sigma move; the data VAE and xi do not
    before_prior, before_vae = values(prior_vars), values(vae_vars)
    out = vae.elbo_terms(x, prior, tf.constant([3, 4]))
    mean, std = out.mean, out.std
    prior.inner_sigma.assign(0.08)  # inside [lb, ub]: the clip passes its gradient
    finite = tf.function(prior.own_step)(mean, std, tf.constant([5, 6]))
    assert bool(finite)
    assert not any(changed(before_vae, vae_vars))
    network = {v.ref() for v in prior.network_variables + [prior.inner_sigma]}
    flags = changed(before_prior, prior_vars)
    assert all(f for f, v in zip(flags, prior_vars) if v.ref() in network)
    assert not any(f for f, v in zip(flags, prior_vars) if v.ref() not in network)


def test_end_of_epoch_refits_the_hyper_prior_on_encoded_t():
    cfg = tiny(sg_pretraining=2, num_epochs=3, accurate_fit=3)
    prior = build_prior(cfg, None)
    pool = clusters(1000, 4, seed=3)
    calls = []

    def sample_z(n, seed):
        calls.append((n, seed))
        idx = np.random.default_rng(seed).choice(len(pool), min(n, len(pool)), replace=False)
        return tf.constant(pool[idx])

    fast0, acc0 = values(prior.fast.variables), values(prior.accurate.variables)
    np.testing.assert_allclose(reference_mixture(prior.fast).log_prob([[0.3, -0.2]]),
                               tfd.MultivariateNormalDiag(tf.zeros(2)).log_prob([[0.3, -0.2]]), rtol=1e-5)
    assert prior.end_of_epoch(sample_z, 1) == {} and not calls  # before sg_pretraining: no fit

    metrics = prior.end_of_epoch(sample_z, 2)
    b = prior.cfg.batch_size  # whole batches, as the original: n // b + 1 of them
    assert calls == [((200 // b + 1) * b, 2)]
    assert any(changed(fast0, prior.fast.variables)) and not any(changed(acc0, prior.accurate.variables))
    assert not bool(prior.has_accurate)
    assert metrics["fast_fit_active_components"] == np.sum(prior.fast.weights.numpy() >= 1e-2)
    assert 1 <= metrics["fast_fit_active_components"] <= 5 and metrics["fast_fit_iterations"] >= 1
    assert np.isfinite(metrics["fast_fit_lower_bound"]) and metrics["fast_fit_seconds"] >= 0
    # the fitted mixture explains the encoded t far better than the unit Gaussian did
    t = prior.sample_t_given_z(tf.constant(pool), seed=9)
    assert t.shape == (1000, 2)
    std_normal = tfd.MultivariateNormalDiag(tf.zeros(2)).log_prob(t)
    assert tf.reduce_mean(prior.fast.log_prob(t)) > tf.reduce_mean(std_normal)

    metrics = prior.end_of_epoch(sample_z, 3)  # the last epoch: accurate fit too
    assert calls[1:] == [((200 // b + 1) * b, 3), ((300 // b + 1) * b, 100_003 + 3)]
    assert bool(prior.has_accurate) and any(changed(acc0, prior.accurate.variables))
    assert {"accurate_fit_active_components", "accurate_fit_iterations",
            "accurate_fit_seconds"} <= set(metrics)
    assert prior.display_mixture() is prior.accurate


# -- runs: outputs and checkpoints -----------------------------------------------------
@pytest.mark.parametrize("prior_name", ["ladder", "hierarchical"])
def test_run_outputs_and_restored_samples(tmp_path, prior_name):
    cfg = tiny(prior=prior_name)
    trainer = training.Trainer(cfg, synthetic_data(), str(tmp_path), show_progress=False)
    rows = trainer.fit()
    assert (tmp_path / "figures" / "latent2d_e002.png").exists()
    for key in ("train_code_reconstruction", "train_t_entropy", "train_t_cross_entropy",
                "train_inner_sigma", "train_prior_objective"):
        assert np.isfinite(rows[-1][key]), key
    run = load_run(str(tmp_path))
    np.testing.assert_array_equal(run.generate(6, seed=4), trainer.vae.decode(trainer.prior.sample(6, 4)))
    np.testing.assert_array_equal(run.prior.inner_sigma.numpy(), trainer.prior.inner_sigma.numpy())
    if prior_name == "hierarchical":
        assert not (tmp_path / "mixture").exists()
        return
    assert bool(run.prior.has_accurate) and rows[-1]["accurate_fit_iterations"] >= 1
    for a, b in zip(mixture_variables(run.prior), mixture_variables(trainer.prior)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    npz = np.load(tmp_path / "mixture" / "mixture_e002.npz")
    for prefix, m in (("", trainer.prior.accurate), ("accurate_", trainer.prior.accurate),
                      ("fast_", trainer.prior.fast)):
        np.testing.assert_allclose(npz[prefix + "w_full"], m.weights.numpy())
        np.testing.assert_allclose(npz[prefix + "m_full"], m.means.numpy())
        np.testing.assert_allclose(npz[prefix + "K_full"], m.covariances.numpy())
        w = m.weights.numpy()
        np.testing.assert_allclose(npz[prefix + "w_active"], w[w >= 1e-2] / w[w >= 1e-2].sum(), rtol=1e-5)
        np.testing.assert_allclose(npz[prefix + "m_active"], m.means.numpy()[w >= 1e-2])
    assert "accurate_w_full" not in np.load(tmp_path / "mixture" / "mixture_e001.npz")


@pytest.mark.e2e
@pytest.mark.skipif(not HAVE_FASHION, reason="Debian dataset-fashion-mnist not installed")
def test_ladder_training_improves_both_elbos_on_fashion_mnist(tmp_path):
    cfg = tiny(num_epochs=3, batch_size=32, fast_fit_samples=400, accurate_fit_samples=512,
               n_mixtures=10, exp_name="mnist_fashion", seed=1, learning_rate_prior=1e-3)
    data = load_dataset("mnist_fashion", allow_download=False, train_size=512)
    rows = training.Trainer(cfg, data, str(tmp_path), show_progress=False).fit()
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[2]["test_elbo"] > rows[1]["test_elbo"]  # both epochs use L'(z) as the prior term
    assert rows[2]["train_elbo"] > rows[1]["train_elbo"]
    assert rows[2]["train_prior_objective"] > rows[0]["train_prior_objective"]
    assert rows[2]["fast_fit_active_components"] >= 1 and (tmp_path / "mixture" / "mixture_e003.npz").exists()


@pytest.mark.parametrize("prior_name", ["hierarchical", "ladder"])
def test_log_prob_estimate_is_a_tighter_bound_than_the_prior_elbo(prior_name):
    """Importance-sampled log p(z) (used by evaluate.py's NLL) against L'(z): IS with k
    samples is a lower bound that rises with k towards log p(z), and never sits below the
    one-sample ELBO in expectation."""
    prior = build_prior(tiny(prior=prior_name), None)
    z = tf.constant(clusters(40, 4, seed=5))
    if prior_name == "ladder":
        prior.fast.fit(prior.sample_t_given_z(z, 0).numpy())
    ones = tf.ones_like(z)
    elbo_mean = np.mean([prior.objective(z, z, ones, tf.constant([s, 9]))[0].numpy()
                         for s in range(64)], axis=0)
    est_small = prior.log_prob_estimate(z, 64, seed=1).numpy()
    est_large = prior.log_prob_estimate(z, 2048, seed=2).numpy()
    assert np.mean(est_large) >= np.mean(elbo_mean) - 0.05
    assert np.mean(est_large) >= np.mean(est_small) - 0.05
    assert np.all(np.isfinite(est_large))
