"""The MNIST / Fashion-MNIST encoder and decoder of supplementary E.1.

Defaults follow the paper (ReLU, sigmoid output). The original code's choices are config
options: ``activation='leaky_relu'`` and ``output_activation='relu'``; with them this is the
original's digits network (its Fashion-MNIST pair is ``ladder_tf.model.networks.mnist_original``).
Widths scale with ``num_hidden_units`` (256 gives the paper's 16/64/256 filters, FC 64 and
FC 4096).
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tf_keras as keras

from ladder_tf.config import Config
from ladder_tf.model.networks.layers import GaussianHead, activation_layer, depth_to_space, symmetric_pad


def conv_encoder(cfg: Config, convs: Sequence[tuple[int, int, str]], fc_units: int) -> keras.Model:
    """x (B, 28, 28, C) -> symmetric pad 2 -> (B, 32, 32, C) -> 3x3 convs -> FC -> Gaussian head.

    ``convs``: (filters, stride, padding) of each 3x3 conv, each followed by the activation;
    then flatten, FC ``fc_units`` + activation, and mean, std of q(z|x), each (B, d_z).
    """
    x = keras.Input(shape=cfg.image_shape, name="x")
    y = symmetric_pad(2, name="symmetric_pad")(x)
    for i, (filters, stride, padding) in enumerate(convs):
        y = keras.layers.Conv2D(filters, 3, strides=stride, padding=padding, name=f"conv{i}")(y)
        y = activation_layer(cfg.activation, name=f"conv{i}_act")(y)
    y = keras.layers.Flatten()(y)
    y = keras.layers.Dense(fc_units, name="fc")(y)
    y = activation_layer(cfg.activation, name="fc_act")(y)
    mean, std = GaussianHead(cfg.code_size, cfg.latent_variance_precision, name="q_z")(y)
    return keras.Model(x, [mean, std], name="encoder")


def build_encoder(cfg: Config) -> keras.Model:
    """x (B, 28, 28, 1) in [0, 1] -> (mean (B, d_z), std (B, d_z)) of q(z|x).

    Convs of h/16, h/4, h filters, stride 2 "same" (32 -> 16 -> 8 -> 4), FC h/4.
    """
    h = cfg.num_hidden_units
    return conv_encoder(cfg, [(h // 16, 2, "same"), (h // 4, 2, "same"), (h, 2, "same")], h // 4)


def decoder_stem(cfg: Config) -> tuple[tf.Tensor, tf.Tensor]:
    """(z input (B, d_z), features (B, 4, 4, h)): FC 16 h + activation, reshaped to
    (1, 1, 16 h) and depth_to_space 4, h = ``num_hidden_units``."""
    h = cfg.num_hidden_units
    z = keras.Input(shape=(cfg.code_size,), name="z")
    y = keras.layers.Dense(16 * h, name="fc")(z)
    y = activation_layer(cfg.activation, name="fc_act")(y)
    y = keras.layers.Reshape((1, 1, 16 * h))(y)
    return z, depth_to_space(4, name="d2s4")(y)


def build_decoder(cfg: Config) -> keras.Model:
    """z (B, d_z) -> mean image (B, 28, 28, 1), the location of the Laplace likelihood."""
    h = cfg.num_hidden_units
    z, y = decoder_stem(cfg)
    for i, filters in enumerate((h, h // 4, h // 16)):
        y = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}")(y)
        y = activation_layer(cfg.activation, name=f"conv{i}_act")(y)
        y = depth_to_space(2, name=f"d2s2_{i}")(y)
    y = keras.layers.Conv2D(cfg.dim_input_channel, 5, padding="valid", name="out")(y)
    y = activation_layer(cfg.output_activation, name="out_act")(y)
    return keras.Model(z, y, name="decoder")
