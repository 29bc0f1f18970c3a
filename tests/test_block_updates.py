"""Algorithm 1's block coordinate ascent (sequential, the default) against the fused step.

Plain SGD with learning rate 1 on the prior's groups makes the applied update equal to
minus the gradient, so the test can read back which gradient each step actually used.
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from ladder_tf.model import elbo
from ladder_tf.workflows import training
from ladder_tf.workflows.block_updates import block_seeds, failed_block
from ladder_tf.config import ConfigError, from_dict
from ladder_tf.model.optim import build_optimizer
from synthetic import synthetic_data

TINY = {"prior": "ladder", "code_size": 4, "representation_size": 2, "n_layers_inner_VAE": 2,
        "num_hidden_units_inner_VAE": 32, "n_MC_samples": 8, "n_mixtures": 5, "num_hidden_units": 64,
        "batch_size": 16, "num_epochs": 2, "sg_pretraining": 1, "fast_fit_samples": 200,
        "accurate_fit_samples": 200, "test_batch_size": 20, "sigma_floor": False,
        "learning_rate_ae": 1e-2, "inner_sigma": 0.08}


def values(variables):
    return [v.numpy().copy() for v in variables]


def assign(variables, arrays):
    for v, a in zip(variables, arrays):
        v.assign(a)


def rel_diff(a, b):
    a, b = (np.concatenate([np.ravel(np.asarray(x)) for x in arrays]) for arrays in (a, b))
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def prepared_trainer(tmp_path, mode):
    """A LaDDer trainer past pre-training with a fitted mixture; SGD(1) on the prior's groups."""
    trainer = training.Trainer(from_dict({**TINY, "block_update": mode}), synthetic_data(),
                               str(tmp_path), show_progress=False)
    trainer.restore()
    trainer.prior.begin_epoch(1)
    trainer.prior.end_of_epoch(trainer.sample_training_z, 1)
    trainer.begin_epoch(2)
    for group in trainer.prior._groups:
        group.optimizer = keras.optimizers.SGD(1.0)
        build_optimizer(group.optimizer, group.variables())
    trainer.opt_sigma = trainer.block_step.opt_sigma = keras.optimizers.SGD(1e-6)
    build_optimizer(trainer.opt_sigma, [trainer.vae.sigma])
    return trainer


def prior_gradients(prior, vae, x, seed, group):
    """-objective's gradient for the prior's group ``group`` as the sequential step draws it."""
    _, _, prior_seed = block_seeds(seed)
    z_seed, objective_seed = tf.unstack(tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(prior_seed, group), 2))
    mean, std = vae.encode(x, training=True)
    variables = prior.variable_groups()[group]
    with tf.GradientTape() as tape:
        z = elbo.reparameterise(mean, std, z_seed)
        loss = -tf.reduce_mean(prior.objective(z, mean, std, objective_seed)[0])  # the full L'(z)
    return tape.gradient(loss, variables)


@pytest.mark.parametrize("mode", ["sequential", "fused"])
def test_prior_block_sees_the_updated_encoder_only_when_sequential(tmp_path, mode):
    trainer = prepared_trainer(tmp_path, mode)
    vae, prior = trainer.vae, trainer.prior
    x = tf.constant(synthetic_data().x_train[:16], tf.float32) / 255.0
    seed = tf.constant([3, 7], tf.int64)
    nets, inner = prior.variable_groups()
    vae_before, nets_before, inner_before = values(vae.network_variables), values(nets), values(inner)
    sigma_before = float(vae.sigma.numpy())
    fused_grads = trainer.block_step.fused_gradients(x, seed)[3]

    out = tf.function(trainer.block_step)(x, seed)
    assert bool(out["finite"]) and failed_block({k: bool(out[k]) for k in
                                                 ("finite_data", "finite_sigma", "finite_prior")}) == ""
    sigma_after = float(vae.sigma.numpy())
    vae_after, nets_after, inner_after = values(vae.network_variables), values(nets), values(inner)
    applied = [b - a for b, a in zip(nets_before, nets_after)]           # SGD(1): the gradient
    applied_inner = [b - a for b, a in zip(inner_before, inner_after)]
    assert rel_diff(vae_after, vae_before) > 1e-3                        # the data VAE moved

    # the gradient the sequential step should use: at the updated encoder, old prior weights
    assign(nets, nets_before)
    at_new = prior_gradients(prior, vae, x, seed, 0)
    assign(vae.network_variables, vae_before)
    at_old = prior_gradients(prior, vae, x, seed, 0)
    assert rel_diff(at_new, at_old) > 0.05                               # the update matters
    sequential_holds = rel_diff(applied, at_new) < 1e-2  # float32 weight differences
    assert sequential_holds == (mode == "sequential")
    if mode == "fused":  # the simultaneous update: the gradient at the old parameters
        assert rel_diff(applied, fused_grads[0]) < 1e-2
        return

    # the inner sigma's step follows the prior VAE's update (its own cheaper objective gives
    # the full L'(z)'s gradient), and sigma's follows the data VAE's
    assign(vae.network_variables, vae_after)
    assign(nets, nets_after)
    assign(inner, inner_before)
    np.testing.assert_allclose(applied_inner[0], prior_gradients(prior, vae, x, seed, 1)[0].numpy(),
                               rtol=1e-3)
    _, sigma_seed, _ = block_seeds(seed)
    vae.sigma.assign(sigma_before)
    mean, std = vae.encode(x, training=True)
    with tf.GradientTape() as tape:
        terms, _ = vae.likelihood_terms(x, elbo.reparameterise(mean, std, sigma_seed), training=True)
        loss = -tf.reduce_mean(terms["reconstruction"] + terms["sigma_term"])
    want = float(tape.gradient(loss, vae.sigma))
    assert want != 0.0
    np.testing.assert_allclose((sigma_before - sigma_after) / 1e-6, want, rtol=2e-2)


def test_partial_inner_sigma_objective_has_the_full_gradient():
    from ladder_tf.model.priors import build_prior

    prior = build_prior(from_dict(TINY), None)
    rng = np.random.default_rng(0)
    mean = tf.constant(rng.normal(size=(8, 4)), tf.float32)
    std = tf.constant(rng.uniform(0.2, 1.5, size=(8, 4)), tf.float32)
    z = mean + std
    seed = tf.constant([4, 2])
    grads = []
    for objective in (prior.objective, prior.code_reconstruction_objective):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(objective(z, mean, std, seed)[0])
        grads.append(float(tape.gradient(value, prior.inner_sigma)))
    assert grads[0] != 0.0
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5)


def test_block_update_is_a_checked_config_key():
    assert from_dict({}).block_update == "sequential"
    with pytest.raises(ConfigError, match="block_update"):
        from_dict({"block_update": "jacobi"})


@pytest.mark.parametrize("mode", ["sequential", "fused"])
@pytest.mark.parametrize("count", [False, True])
def test_vampprior_idle_epoch_in_both_block_updates(tmp_path, mode, count):
    """In epoch sg_pretraining the pseudo-inputs never move; their Adam counts those steps only
    with ``count_pretraining_prior_steps`` (the authors' code), whichever block update runs."""
    cfg = from_dict({**TINY, "prior": "vampprior", "block_update": mode, "sg_pretraining": 2,
                     "count_pretraining_prior_steps": count})
    trainer = training.Trainer(cfg, synthetic_data(), str(tmp_path), show_progress=False)
    trainer.restore()
    x = tf.constant(synthetic_data().x_train[:16].astype(np.float32) / 255.0)
    u0 = trainer.prior.pseudo_inputs.numpy()
    opt = trainer.prior.prior_optimizers[0]
    for epoch, steps in ((1, 2), (2, 3)):  # epoch 1: prior inactive; epoch 2 = sg_pretraining
        trainer.begin_epoch(epoch)
        for i in range(steps):
            trainer.train_step(x, tf.constant([epoch, i], tf.int64))
    np.testing.assert_array_equal(trainer.prior.pseudo_inputs.numpy(), u0)
    assert int(opt.iterations) == (3 if count else 0)
    trainer.begin_epoch(3)
    trainer.train_step(x, tf.constant([3, 0], tf.int64))
    assert int(opt.iterations) == (4 if count else 1)
    assert not np.array_equal(trainer.prior.pseudo_inputs.numpy(), u0)
