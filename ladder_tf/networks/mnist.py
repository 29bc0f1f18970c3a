"""The MNIST / Fashion-MNIST encoder and decoder of supplementary E.1.

Defaults follow the paper (ReLU, sigmoid output). The original code's choices are config
options: ``activation='leaky_relu'`` and ``output_activation='relu'``; with them this is the
original's digits network (its Fashion-MNIST pair is ``ladder_tf.networks.mnist_original``).
Widths scale with ``num_hidden_units`` (256 gives the paper's 16/64/256 filters, FC 64 and
FC 4096).
"""
from __future__ import annotations

import tf_keras as keras

from ladder_tf.config import Config
from ladder_tf.networks.layers import GaussianHead, activation_layer, depth_to_space, symmetric_pad


def build_encoder(cfg: Config) -> keras.Model:
    """x (B, 28, 28, 1) in [0, 1] -> (mean (B, d_z), std (B, d_z)) of q(z|x)."""
    h = cfg.num_hidden_units
    x = keras.Input(shape=cfg.image_shape, name="x")
    y = symmetric_pad(2, name="symmetric_pad")(x)
    for i, filters in enumerate((h // 16, h // 4, h)):
        y = keras.layers.Conv2D(filters, 3, strides=2, padding="same", name=f"conv{i}")(y)
        y = activation_layer(cfg.activation, name=f"conv{i}_act")(y)
    y = keras.layers.Flatten()(y)
    y = keras.layers.Dense(h // 4, name="fc")(y)
    y = activation_layer(cfg.activation, name="fc_act")(y)
    mean, std = GaussianHead(cfg.code_size, cfg.latent_variance_precision, name="q_z")(y)
    return keras.Model(x, [mean, std], name="encoder")


def build_decoder(cfg: Config) -> keras.Model:
    """z (B, d_z) -> mean image (B, 28, 28, 1), the location of the Laplace likelihood."""
    h = cfg.num_hidden_units
    z = keras.Input(shape=(cfg.code_size,), name="z")
    y = keras.layers.Dense(16 * h, name="fc")(z)
    y = activation_layer(cfg.activation, name="fc_act")(y)
    y = keras.layers.Reshape((1, 1, 16 * h))(y)
    y = depth_to_space(4, name="d2s4")(y)
    for i, filters in enumerate((h, h // 4, h // 16)):
        y = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}")(y)
        y = activation_layer(cfg.activation, name=f"conv{i}_act")(y)
        y = depth_to_space(2, name=f"d2s2_{i}")(y)
    y = keras.layers.Conv2D(cfg.dim_input_channel, 5, padding="valid", name="out")(y)
    y = activation_layer(cfg.output_activation, name="out_act")(y)
    return keras.Model(z, y, name="decoder")
