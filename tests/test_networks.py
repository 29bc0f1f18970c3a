"""The supplementary E.1 networks: shapes, parameter counts, options."""
import numpy as np
import pytest

from ladder_tf.config import from_dict
from ladder_tf.model.networks import build_networks


def param_count(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def test_paper_network_shapes_and_parameter_counts():
    enc, dec = build_networks(from_dict({"code_size": 16}))
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(np.float32)
    mean, std = enc(x)
    assert mean.shape == (3, 16) and std.shape == (3, 16)
    assert np.all(std.numpy() >= 1e-3)  # ReLU + latent_variance_precision floor
    out = dec(mean)
    assert out.shape == (3, 28, 28, 1)
    assert np.all((out.numpy() >= 0) & (out.numpy() <= 1))  # sigmoid output
    # closed-form counts of supplementary E.1 (conv 3x3 16/64/256, FC 64, heads; FC 4096, convs, 5x5 out)
    enc_expected = (9 * 1 * 16 + 16) + (9 * 16 * 64 + 64) + (9 * 64 * 256 + 256) \
        + (4 * 4 * 256 * 64 + 64) + 2 * (64 * 16 + 16)
    dec_expected = (16 * 4096 + 4096) + (9 * 256 * 256 + 256) + (9 * 64 * 64 + 64) \
        + (9 * 16 * 16 + 16) + (25 * 4 * 1 + 1)
    assert param_count(enc) == enc_expected
    assert param_count(dec) == dec_expected


@pytest.mark.parametrize("out_act", ["relu", "linear"])
def test_original_options(out_act):
    enc, dec = build_networks(from_dict({"code_size": 4, "activation": "leaky_relu",
                                         "output_activation": out_act}))
    z = np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32) * 5
    out = dec(z).numpy()
    assert out.shape == (2, 28, 28, 1)
    if out_act == "relu":
        assert out.min() >= 0


def test_large_network_shapes_and_parameter_counts():
    cfg = from_dict({"code_size": 16, "mnist_network": "large"})
    enc, dec = build_networks(cfg)
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32)
    mean, std = enc(x)
    assert mean.shape == (2, 16) and dec(mean).shape == (2, 28, 28, 1)

    def conv(c_in, c_out, k=3):
        return k * k * c_in * c_out + c_out
    # h = 256: encoder pairs (16, 16), (64, 64), (256, 256) filters, FC 64, two heads
    enc_expected = conv(1, 16) + conv(16, 16) + conv(16, 64) + conv(64, 64) + conv(64, 256) \
        + conv(256, 256) + (4 * 4 * 256 * 64 + 64) + 2 * (64 * 16 + 16)
    # FC 4096 -> (4, 4, 256): convs 256, 256 -> (8, 8, 64): 64, 64 -> (16, 16, 16): 16, 16
    # -> (32, 32, 4): conv 16, 5x5 out
    dec_expected = (16 * 4096 + 4096) + conv(256, 256) + conv(256, 256) + conv(64, 64) \
        + conv(64, 64) + conv(16, 16) + conv(16, 16) + conv(4, 16) + conv(16, 1, 5)
    assert param_count(enc) == enc_expected
    assert param_count(dec) == dec_expected
