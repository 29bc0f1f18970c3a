"""A deeper MNIST / Fashion-MNIST pair beyond the paper (``mnist_network='large'``).

The paper's E.1 networks (``ladder_tf.model.networks.mnist``) with two convolutions at every
resolution instead of one: the encoder adds a stride-1 3x3 convolution of the same width
before each stride-2 one, the decoder a second 3x3 convolution after each one, and the
decoder ends with one more 3x3 convolution at 32x32 before the 5x5 output. Up-sampling
stays depth_to_space. Widths scale with h = ``num_hidden_units`` as in the paper's pair
(h = 256: encoder 16, 64, 256 filters and FC 64; decoder FC 16 h, then 256, 64, 16 filters).
Not part of the reproduction: it is the network of the declared beyond-the-paper configs.
"""
from __future__ import annotations

import tf_keras as keras

from ladder_tf.config import Config
from ladder_tf.model.networks.layers import activation_layer, depth_to_space
from ladder_tf.model.networks.mnist import conv_encoder, decoder_stem


def build_encoder(cfg: Config) -> keras.Model:
    """x (B, 28, 28, C) in [0, 1] -> (mean (B, d_z), std (B, d_z)) of q(z|x).

    Pad to 32, then per width w in (h/16, h/4, h): conv 3x3 stride 1 (w), conv 3x3 stride 2
    (w), each + activation (32 -> 16 -> 8 -> 4); flatten, FC h/4, Gaussian head.
    """
    h = cfg.num_hidden_units
    convs = []
    for width in (h // 16, h // 4, h):
        convs += [(width, 1, "same"), (width, 2, "same")]
    return conv_encoder(cfg, convs, h // 4)


def build_decoder(cfg: Config) -> keras.Model:
    """z (B, d_z) -> mean image (B, 28, 28, C), the location of the Laplace likelihood.

    FC 16 h, reshape (1, 1, 16 h), depth_to_space 4 -> (4, 4, h); per width w in (h, h/4,
    h/16): two 3x3 convs (w) + activation, depth_to_space 2 (4 -> 8 -> 16 -> 32); one more
    3x3 conv (h/16) + activation; 5x5 "valid" conv to the channels + output activation.
    """
    h = cfg.num_hidden_units
    z, y = decoder_stem(cfg)
    for i, width in enumerate((h, h // 4, h // 16)):
        for j in range(2):
            y = keras.layers.Conv2D(width, 3, padding="same", name=f"conv{i}_{j}")(y)
            y = activation_layer(cfg.activation, name=f"conv{i}_{j}_act")(y)
        y = depth_to_space(2, name=f"d2s2_{i}")(y)
    y = keras.layers.Conv2D(h // 16, 3, padding="same", name="conv_last")(y)
    y = activation_layer(cfg.activation, name="conv_last_act")(y)
    y = keras.layers.Conv2D(cfg.dim_input_channel, 5, padding="valid", name="out")(y)
    y = activation_layer(cfg.output_activation, name="out_act")(y)
    return keras.Model(z, y, name="decoder")
