"""Supplementary E.2 networks: closed-form parameter counts, shapes, style layers, training steps."""
import numpy as np
import pytest
import tensorflow as tf

from ladder_tf.workflows import training
from ladder_tf.config import ConfigError, from_dict
from ladder_tf.data import ImageData
from ladder_tf.model.networks import build_networks
from ladder_tf.model.networks.style import InstanceNorm, StyleModule

CELEBA = {"exp_name": "celeba", "dim_input_x": 128, "dim_input_y": 128, "dim_input_channel": 3,
          "activation": "leaky_relu", "output_activation": "linear"}
rng = np.random.default_rng(0)


def celeba_cfg(**kw):
    return from_dict({**CELEBA, **kw})


def count(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def dense(n_in, n_out):
    return n_in * n_out + n_out


def test_paper_parameter_counts_match_the_supplementary():
    enc, dec = build_networks(celeba_cfg(code_size=256, num_hidden_units=512))
    filters = [3, 32, 64, 128, 256, 512, 1024]
    enc_expected = sum(conv(3, a, b) for a, b in zip(filters, filters[1:])) + dense(1024, 512) \
        + 2 * dense(512, 256)
    channels = [512, 512, 512, 512, 256, 256, 128, 128]  # 1x1 input, then blocks at 2 ... 128
    blocks = sum(conv(3, a, b) + dense(512, 2 * b) for a, b in zip(channels, channels[1:]))
    dec_expected = dense(256, 512) + 7 * dense(512, 512) + blocks + conv(3, 128, 128) + conv(3, 128, 3)
    assert count(enc) == enc_expected == 7_075_648
    assert count(dec) == dec_expected


def test_original_variant_parameter_counts():
    enc, dec = build_networks(celeba_cfg(code_size=256, num_hidden_units=512, celeba_network="original"))
    filters = [3, 128, 128, 256, 256, 512, 512]
    enc_expected = sum(conv(3, a, b) + 2 * b for a, b in zip(filters, filters[1:])) \
        + 2 * dense(2 * 2 * 512, 256)  # batch-norm gamma/beta; heads on the flattened 2x2x512
    stages = [(512, True), (512, True), (512, False), (256, True), (256, False), (128, True), (128, False)]
    c_in, body = 512, 0
    for c, styled in stages:
        body += conv(3, c_in, c) + (dense(512, 2 * c) if styled else 0)
        c_in = c
    dec_expected = dense(256, 512) + 8 * dense(512, 512) + conv(1, 512, 512) + body + conv(1, 128, 3)
    assert count(enc) == enc_expected
    assert count(dec) == dec_expected


@pytest.mark.parametrize("variant", ["paper", "original"])
def test_shapes_and_heads(variant):
    enc, dec = build_networks(celeba_cfg(code_size=8, num_hidden_units=32, celeba_network=variant))
    x = rng.uniform(size=(2, 128, 128, 3)).astype(np.float32)
    mean, std = enc(x, training=False)
    assert mean.shape == (2, 8) and std.shape == (2, 8) and np.all(std.numpy() >= 1e-3)
    out = dec(mean)
    assert out.shape == (2, 128, 128, 3) and out.dtype == tf.float32


def test_instance_norm_and_style_module_against_numpy():
    x = rng.normal(2.0, 3.0, size=(2, 5, 4, 3)).astype(np.float32)
    w = rng.normal(size=(2, 6)).astype(np.float32)
    norm = InstanceNorm()(x).numpy()
    ref = (x - x.mean(axis=(1, 2), keepdims=True)) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(norm, ref, rtol=1e-4, atol=1e-5)
    style = StyleModule(3)
    out = style([x, w]).numpy()
    kernel, bias = style.dense.kernel.numpy(), style.dense.bias.numpy()
    affine = w @ kernel + bias
    s, b = affine[:, :3], affine[:, 3:]
    np.testing.assert_allclose(out, x * (s[:, None, None] + 1) + b[:, None, None], rtol=1e-5, atol=1e-5)
    assert count(style) == dense(6, 6)


def test_mixed_precision_keeps_float32_inputs_and_outputs():
    cfg = celeba_cfg(code_size=8, num_hidden_units=32, mixed_precision="bfloat16")
    enc, dec = build_networks(cfg)
    full_enc, full_dec = build_networks(celeba_cfg(code_size=8, num_hidden_units=32))
    for a, b in zip(full_enc.variables + full_dec.variables, enc.variables + dec.variables):
        a.assign(b)  # variables stay float32 under the policy
    assert {layer.compute_dtype for layer in dec.layers[2:-2]} == {"bfloat16"}
    x = rng.uniform(size=(2, 128, 128, 3)).astype(np.float32)
    mean, std = enc(x)
    out = dec(mean)
    assert mean.dtype == std.dtype == out.dtype == tf.float32
    np.testing.assert_allclose(mean, full_enc(x)[0], atol=0.05 * float(tf.reduce_max(tf.abs(mean))))


def test_config_rules():
    with pytest.raises(ConfigError, match="128x128x3"):
        celeba_cfg(dim_input_x=64)
    with pytest.raises(ConfigError, match="multiple of 16"):
        celeba_cfg(num_hidden_units=40)
    with pytest.raises(ConfigError, match="CelebA-type networks"):
        from_dict({"mixed_precision": "float16"})
    folder = {**CELEBA, "exp_name": "folder", "dim_input_x": 64, "dim_input_y": 64}
    assert from_dict(folder).image_shape == (64, 64, 3)
    assert from_dict({**folder, "exp_name": "tfds:cifar10", "mixed_precision": "bfloat16"}).exp_name == "tfds:cifar10"
    for bad, match in (({"dim_input_x": 48, "dim_input_y": 48}, "square images of 8, 16"),
                       ({"dim_input_y": 32}, "32x64"), ({"celeba_network": "original"}, "128x128 images only"),
                       ({"exp_name": "tfds:"}, "or tfds:NAME"), ({"exp_name": "pictures"}, "folder")):
        with pytest.raises(ConfigError, match=match):
            from_dict({**folder, **bad})


def test_paper_networks_at_64_pixels_keep_the_layers_at_64_and_below():
    """At 64x64 the paper networks drop the 128x128 encoder conv (h/16) and decoder block."""
    cfg = from_dict({**CELEBA, "exp_name": "folder", "dim_input_x": 64, "dim_input_y": 64,
                     "code_size": 256, "num_hidden_units": 512})
    enc, dec = build_networks(cfg)
    filters = [3, 64, 128, 256, 512, 1024]
    assert count(enc) == sum(conv(3, a, b) for a, b in zip(filters, filters[1:])) + dense(1024, 512) \
        + 2 * dense(512, 256)
    channels = [512, 512, 512, 512, 256, 256, 128]  # 1x1 input, then blocks at 2 ... 64
    blocks = sum(conv(3, a, b) + dense(512, 2 * b) for a, b in zip(channels, channels[1:]))
    assert count(dec) == dense(256, 512) + 7 * dense(512, 512) + blocks + conv(3, 128, 128) + conv(3, 128, 3)


@pytest.mark.parametrize("size,channels", [(8, 1), (32, 3)])
def test_paper_networks_at_other_sizes_and_grey(size, channels):
    cfg = from_dict({**CELEBA, "exp_name": "folder", "dim_input_x": size, "dim_input_y": size,
                     "dim_input_channel": channels, "code_size": 4, "num_hidden_units": 32})
    enc, dec = build_networks(cfg)
    mean, std = enc(np.zeros((2, size, size, channels), np.float32))
    assert mean.shape == std.shape == (2, 4)
    assert dec(mean).shape == (2, size, size, channels)


def test_step_restart_schedule():
    cfg = celeba_cfg(lr_schedule="step_restart", learning_rate_ae=5e-4, lr_decay_ae=0.99)
    # the original: lr * 0.99^(e-1) up to epoch 25, then lr/2 * 0.99^(e-25) up to 50,
    # lr/5 * 0.99^(e-50) up to 75, lr/10 * 0.99^(e-75) after
    expected = {1: 5e-4, 24: 5e-4 * 0.99 ** 23, 25: 5e-4 * 0.99 ** 24, 26: 2.5e-4 * 0.99,
                50: 2.5e-4 * 0.99 ** 25, 51: 1e-4 * 0.99, 75: 1e-4 * 0.99 ** 25,
                76: 5e-5 * 0.99, 80: 5e-5 * 0.99 ** 5}
    for epoch, lr in expected.items():
        assert training.ae_learning_rate(cfg, epoch) == pytest.approx(lr, rel=1e-12)
    exp = celeba_cfg(learning_rate_ae=5e-4)
    assert training.ae_learning_rate(exp, 30) == pytest.approx(5e-4 * 0.99 ** 29)


@pytest.mark.slow
@pytest.mark.parametrize("prior", ["normal", "gmm", "vampprior", "hierarchical", "ladder"])
def test_two_training_steps_per_prior(prior, tmp_path):
    cfg = celeba_cfg(prior=prior, code_size=8, num_hidden_units=32, batch_size=8, representation_size=2,
                     n_mixtures=3, n_MC_samples=4, num_hidden_units_inner_VAE=16, n_layers_inner_VAE=2,
                     sg_pretraining=1, test_batch_size=10)
    x = rng.integers(0, 256, (16, 128, 128, 3), dtype=np.uint8)
    data = ImageData(x, np.zeros(16, np.int64), x[:10], np.zeros(10, np.int64), "synthetic")
    trainer = training.Trainer(cfg, data, str(tmp_path), show_progress=False)
    trainer.restore()
    trainer.begin_epoch(2)  # past pre-training: the prior's own term is in the ELBO, its step runs
    # eager: tracing the 128x128 graph costs ~5 s per prior on 2 cores; the compiled step is
    # covered by tests/test_distributed.py (mirrored LaDDer epoch, two-worker CelebA run)
    trainer.train_step = trainer.block_step
    vae_before = [v.numpy() for v in trainer.vae.network_variables]
    prior_before = [v.numpy() for v in trainer.prior.trainable_variables]
    outs = [trainer.train_step(batch, tf.constant([0, i], tf.int64))
            for i, batch in enumerate(training.epoch_batches(data.x_train, cfg, None, 2, 0, 2))]
    assert len(outs) == 2
    for out in outs:
        assert bool(out["finite"])
        terms = [float(out[k]) for k in ("reconstruction", "sigma_term", "entropy", "cross_entropy")]
        assert np.all(np.isfinite(terms)) and float(out["elbo"]) == pytest.approx(sum(terms), rel=1e-5)
    assert all(not np.array_equal(a, b.numpy()) for a, b in zip(vae_before, trainer.vae.network_variables))
    changed = [not np.array_equal(a, b.numpy()) for a, b in zip(prior_before, trainer.prior.trainable_variables)]
    assert all(changed) and (len(changed) > 0) == (prior in ("vampprior", "hierarchical", "ladder"))
