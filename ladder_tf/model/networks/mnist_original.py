"""The authors' code's Fashion-MNIST encoder and decoder (``mnist_network='original_fashion'``).

The paper states one network for both MNIST sets (``ladder_tf.model.networks.mnist``); the
authors' code trained Fashion-MNIST with a wider pair, described in docs/original.md,
section 2. Widths scale with h = ``num_hidden_units`` (the original used 256); the hidden
activation is ``activation`` and the output's ``output_activation`` (the original: leaky
ReLU and ReLU, set by ``configs/original/mnist_fashion.json``).

Encoder, for h = 256:
    x (B, 28, 28, 1) -> symmetric pad 2 -> (B, 32, 32, 1)
    -> conv 3x3 stride 2 "same", h/4 (64)   -> (B, 16, 16, 64)
    -> conv 3x3 stride 2 "same", h/4 (64)   -> (B, 8, 8, 64)
    -> conv 3x3 stride 2 "same", h/2 (128)  -> (B, 4, 4, 128)
    -> conv 3x3 stride 1 "valid", h/2 (128) -> (B, 2, 2, 128), each conv + activation
    -> flatten (B, 512) -> FC h (256) + activation -> Gaussian head (mean, std) (B, d_z) each.
Decoder, for h = 256:
    z (B, d_z) -> FC h + activation -> (B, 1, 1, 256)
    -> depth_to_space 2 -> (B, 2, 2, 64)   -> conv 1x1, h + activation -> (B, 2, 2, 256)
    -> depth_to_space 2 -> (B, 4, 4, 64)   -> conv 3x3, h + activation -> (B, 4, 4, 256)
    -> depth_to_space 2 -> (B, 8, 8, 64)   -> conv 3x3, h + activation -> (B, 8, 8, 256)
    -> depth_to_space 2 -> (B, 16, 16, 64) -> conv 3x3, h + activation -> (B, 16, 16, 256)
    -> depth_to_space 2 -> (B, 32, 32, 64)
    -> conv 5x5 "valid" to the image's channels + output activation -> (B, 28, 28, 1).
"""
from __future__ import annotations

import tf_keras as keras

from ladder_tf.config import Config
from ladder_tf.model.networks.layers import activation_layer, depth_to_space
from ladder_tf.model.networks.mnist import conv_encoder

# (filters as a divisor of h, stride, padding) of the encoder's four convolutions
ENCODER_CONVS = ((4, 2, "same"), (4, 2, "same"), (2, 2, "same"), (2, 1, "valid"))
# kernel sizes of the decoder's four h-filter convolutions, one after each of the first four
# depth_to_space steps (a fifth step precedes the output convolution)
DECODER_KERNELS = (1, 3, 3, 3)


def build_encoder(cfg: Config) -> keras.Model:
    """x (B, 28, 28, C) in [0, 1] -> (mean (B, d_z), std (B, d_z)) of q(z|x)."""
    h = cfg.num_hidden_units
    return conv_encoder(cfg, [(h // div, stride, padding) for div, stride, padding in ENCODER_CONVS], h)


def build_decoder(cfg: Config) -> keras.Model:
    """z (B, d_z) -> mean image (B, 28, 28, C), the location of the Laplace likelihood."""
    h = cfg.num_hidden_units
    z = keras.Input(shape=(cfg.code_size,), name="z")
    y = keras.layers.Dense(h, name="fc")(z)
    y = activation_layer(cfg.activation, name="fc_act")(y)
    y = keras.layers.Reshape((1, 1, h))(y)
    for i, kernel in enumerate(DECODER_KERNELS):
        y = depth_to_space(2, name=f"d2s2_{i}")(y)
        y = keras.layers.Conv2D(h, kernel, padding="same", name=f"conv{i}")(y)
        y = activation_layer(cfg.activation, name=f"conv{i}_act")(y)
    y = depth_to_space(2, name=f"d2s2_{len(DECODER_KERNELS)}")(y)
    y = keras.layers.Conv2D(cfg.dim_input_channel, 5, padding="valid", name="out")(y)
    y = activation_layer(cfg.output_activation, name="out_act")(y)
    return keras.Model(z, y, name="decoder")
