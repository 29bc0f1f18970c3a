"""configs/original/: the authors' code's hyper-parameters and networks, checked by hand.

Expected values are the original's JSON configs (test_config.ORIGINAL_FASHION and the
differences of the other two data sets); parameter counts are closed forms of the
original's layer sizes (docs/original.md, sections 1 and 2).
"""
import numpy as np
import pytest

from ladder_tf import config as config_lib
from ladder_tf.workflows import training
from ladder_tf.model.networks import build_networks
from ladder_tf.model.networks.prior_vae import build_prior_decoder, build_prior_encoder
from ladder_tf.model.priors.base import fit_sample_count
from synthetic import synthetic_data
from test_celeba_networks import conv, count, dense
from test_config import ORIGINAL_FASHION

ORIGINAL = {
    "mnist_fashion": ORIGINAL_FASHION,
    "mnist_digit": {**ORIGINAL_FASHION, "exp_name": "mnist_digit", "sg_pretraining": 5, "code_size": 8},
    "celeba": {**ORIGINAL_FASHION, "exp_name": "celeba", "num_epochs": 50, "use_mask_start": 100,
               "accurate_fit": 3, "learning_rate_ae": 2.5e-4, "learning_rate_sigma": 2.5e-4,
               "learning_rate_prior": 1.25e-4, "batch_size": 64, "dim_input_x": 128,
               "dim_input_y": 128, "dim_input_channel": 3, "code_size": 256, "num_hidden_units": 512},
}
# the original's settings outside its JSON files, equal for the three data sets
FIXED = {"adam_beta1": 0.9, "adam_beta2": 0.95, "grad_clip_value": 1.0, "lr_decay_ae": 0.99,
         "lr_decay_sigma": 0.99, "lr_growth_prior": 1.01, "weight_concentration_prior": 0.1,
         "fast_fit_max_iter": 1000, "accurate_fit_max_iter": 2000, "gmm_covariance_jitter": 0.01,
         "sigma_floor": True, "activation": "leaky_relu"}


def load(name, *overrides):
    return config_lib.load(f"configs/original/{name}.json", overrides)


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_config_values_are_the_originals(name):
    cfg = load(name)
    for key, value in ORIGINAL[name].items():
        if key in config_lib.LEGACY_KEYS:
            continue  # TF1 plumbing, not a setting of this package
        expected = config_lib.PRIOR_ALIASES.get(value, value) if key == "prior" else value
        assert getattr(cfg, key) == expected, key
    for key, value in FIXED.items():
        assert getattr(cfg, key) == value, key
    b = cfg.batch_size  # the original fits on whole batches: 2000 // b + 1 and 20000 // b + 1
    assert fit_sample_count(cfg.fast_fit_samples, b) == (2000 // b + 1) * b
    assert fit_sample_count(cfg.accurate_fit_samples, b) == (20000 // b + 1) * b
    assert cfg.test_batch_size == (b if name != "celeba" else 64)
    assert cfg.output_activation == ("linear" if name == "celeba" else "relu")
    if name == "celeba":
        assert (cfg.celeba_network, cfg.lr_schedule) == ("original", "step_restart")
    else:
        assert cfg.mnist_network == ("original_fashion" if name == "mnist_fashion" else "paper")


def prior_vae_count(d_z, d_t, units=512, layers=5):
    trunk = lambda d_in: dense(d_in, units) + (layers - 1) * dense(units, units)  # noqa: E731
    return trunk(d_z) + 2 * dense(units, d_t), trunk(d_t) + dense(units, d_z)


def data_vae_expected(name):
    if name == "mnist_digit":  # h = 256, d_z = 8: convs 16/64/256, FC 64; FC 4096, convs 256/64/16
        enc = conv(3, 1, 16) + conv(3, 16, 64) + conv(3, 64, 256) + dense(4 * 4 * 256, 64) + 2 * dense(64, 8)
        dec = dense(8, 4096) + conv(3, 256, 256) + conv(3, 64, 64) + conv(3, 16, 16) + conv(5, 4, 1)
    elif name == "mnist_fashion":  # convs 64/64/128/128 (last valid: 2x2), FC 256; FC 256, 4 convs 256
        enc = conv(3, 1, 64) + conv(3, 64, 64) + conv(3, 64, 128) + conv(3, 128, 128) \
            + dense(2 * 2 * 128, 256) + 2 * dense(256, 16)
        dec = dense(16, 256) + conv(1, 64, 256) + 3 * conv(3, 64, 256) + conv(5, 64, 1)
    else:  # batch-normed convs 128/128/256/256/512/512, heads on 2x2x512; 8-layer mapping, 4 styles
        enc = conv(3, 3, 128) + conv(3, 128, 128) + conv(3, 128, 256) + conv(3, 256, 256) \
            + conv(3, 256, 512) + conv(3, 512, 512) + 2 * (128 + 128 + 256 + 256 + 512 + 512) \
            + 2 * dense(2 * 2 * 512, 256)
        styles = dense(512, 2 * 512) * 2 + dense(512, 2 * 256) + dense(512, 2 * 128)
        # 1x1 in; 3x3 at 2 (styled), 2 (styled), 8, 16 (styled), 32, 64 (styled), 128; 1x1 out
        convs = conv(1, 512, 512) + 3 * conv(3, 512, 512) + conv(3, 512, 256) + conv(3, 256, 256) \
            + conv(3, 256, 128) + conv(3, 128, 128) + conv(1, 128, 3)
        dec = dense(256, 512) + 8 * dense(512, 512) + styles + convs
    return enc, dec


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_networks_have_the_originals_parameter_counts(name):
    cfg = load(name)
    enc, dec = build_networks(cfg)
    assert (count(enc), count(dec)) == data_vae_expected(name)
    p_enc, p_dec = build_prior_encoder(cfg), build_prior_decoder(cfg)
    assert (count(p_enc), count(p_dec)) == prior_vae_count(cfg.code_size, 2)
    if name == "celeba":  # the original's second styled block runs at 2x2, the resize follows it
        layer_names = [layer.name for layer in dec.layers]
        assert "block1_resize" not in layer_names
        assert dec.get_layer("block1_conv").output.shape[1:] == (2, 2, 512)
        assert dec.get_layer("block2_resize").output.shape[1:] == (8, 8, 512)


def test_fashion_network_shapes():
    cfg = load("mnist_fashion")
    enc, dec = build_networks(cfg)
    assert tuple(enc.get_layer("conv3").output.shape[1:]) == (2, 2, 128)
    assert tuple(dec.get_layer("d2s2_0").output.shape[1:]) == (2, 2, 64)
    assert tuple(dec.get_layer("d2s2_4").output.shape[1:]) == (32, 32, 64)
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32)
    mean, std = enc(x)
    out = dec(mean * 10.0).numpy()
    assert mean.shape == (2, 16) and np.all(std.numpy() >= 1e-3)
    assert out.shape == (2, 28, 28, 1) and out.min() >= 0.0  # ReLU output


def test_fashion_original_config_trains_one_step(tmp_path):
    """One step with the prior VAE active (sg_pretraining 1) and both mixture fits."""
    cfg = load("mnist_fashion", "batch_size=16", "num_epochs=1", "steps_per_epoch=1", "sg_pretraining=1",
               "test_batch_size=20", "fast_fit_samples=48", "accurate_fit_samples=48", "n_mixtures=4")
    trainer = training.Trainer(cfg, synthetic_data(), str(tmp_path), show_progress=False)
    before = [v.numpy() for v in list(trainer.vae.trainable_variables) + trainer.prior.network_variables]
    rows = trainer.fit()
    after = [v.numpy() for v in list(trainer.vae.trainable_variables) + trainer.prior.network_variables]
    assert int(trainer.step) == 1 and len(rows) == 1
    assert all(np.isfinite(rows[0][k]) for k in ("train_elbo", "test_elbo", "fast_fit_lower_bound"))
    assert rows[0]["accurate_fit_samples"] == 64  # 48 // 16 + 1 whole batches of 16
    changed = [not np.array_equal(a, b) for a, b in zip(before, after)]
    n_vae = len(trainer.vae.trainable_variables)
    assert any(changed[:n_vae]) and any(changed[n_vae:])
