"""The CelebA 128x128 encoder and StyleGAN-like decoder (supplementary E.2), also at 8 ... 64.

Widths scale with h = ``num_hidden_units`` (512 gives the paper's channel counts).
``celeba_network`` picks the variant; the paper is the default (docs/original.md, section 2).
The paper variant also serves the other image data sets (folder, tfds:NAME) at S x S pixels,
S = ``dim_input_x`` in 8, 16, 32, 64, 128: it keeps the layers of the 128x128 networks that
work at S pixels or fewer (encoder: the last log2(S) - 2 stride-2 convs, from h/2^(log2(S)-3)
filters up to h, then the 4x4 -> 1x1 conv; decoder: the blocks at 2, 4, ..., S), so at 128
it is exactly the paper's network and at 64 it drops the first encoder conv (h/16 filters)
and the last decoder block (128x128, h/4 filters).

``paper``
    Encoder (at 128x128): five 3x3 stride-2 "same" convs with h/16, h/8, h/4, h/2, h filters (32 ... 512),
    a 3x3 stride-2 "valid" conv with 2h (1024) filters (4x4 -> 1x1), each followed by the
    activation; FC h (512) + activation; Gaussian head (mean linear, std ReLU + floor).
    Decoder: mapping network of 8 x [FC h + activation] from z gives w, which is both the
    1x1xh starting feature and the style vector of every style module; then seven blocks
    [bilinear resize to 2, 4, ..., 128; conv 3x3 with h, h, h, h/2, h/2, h/4, h/4 filters;
    instance norm; style module; activation]; conv 3x3 h/4 + activation; conv 3x3 to 3
    channels + ``output_activation``.
``original``
    The authors' code: encoder convs h/4, h/4, h/2, h/2, h (stride 2) and h (3x3 valid,
    stride 1), each with batch normalisation (proper training/inference modes here) and
    the activation, then the Gaussian head on the flattened 2x2xh map (no FC layer).
    Decoder: v = act(FC h(z)) is the 1x1 feature and the mapping network's input; conv 1x1
    h; four styled blocks, two at 2x2 (h; the second without a resize, as the original
    runs it), then at 16 (h/2) and 64 (h/4), with plain conv + activation stages at 8, 32
    and 128 between them; conv 1x1 to 3 channels. Instance norm uses epsilon 1e-6 here
    (TF1's ``tf.contrib.layers.instance_norm`` default), 1e-5 in the paper variant.

One reading of under-specified text, stated here: the supplementary lists no activation
inside the decoder blocks nor after FC 512; both get the configured activation (leaky
ReLU for CelebA), as the original code has it, since without them consecutive linear
layers collapse.

Mixed precision (``mixed_precision`` 'float16' / 'bfloat16'): every layer but the Gaussian
head and the output conv computes in the low precision; inputs and outputs stay float32,
so the ELBO terms and the prior networks are unchanged.
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from ladder_tf.config import Config
from ladder_tf.model.networks.layers import GaussianHead, activation_layer
from ladder_tf.model.networks.style import INSTANCE_NORM_EPSILON, InstanceNorm, StyleModule, Upsample

IMAGE_SIZE = 128
MAPPING_LAYERS = 8
PAPER_BLOCKS = ((2, 1), (4, 1), (8, 1), (16, 2), (32, 2), (64, 4), (128, 4))  # (size, h divisor)
# (size, h divisor, styled) of the original's seven stages; its second styled block stays at 2x2
ORIGINAL_STAGES = ((2, 1, True), (2, 1, True), (8, 1, False), (16, 2, True), (32, 2, False),
                   (64, 4, True), (128, 4, False))
ORIGINAL_INSTANCE_NORM_EPSILON = 1e-6


def compute_policy(cfg: Config) -> keras.mixed_precision.Policy | None:
    """The Keras dtype policy of the low-precision layers (None: float32)."""
    if cfg.mixed_precision == "off":
        return None
    return keras.mixed_precision.Policy(f"mixed_{cfg.mixed_precision}")


def paper_encoder_widths(h: int, size: int) -> list[int]:
    """Filters of the paper encoder's stride-2 "same" convs at ``size`` pixels (size -> 4x4):
    the last log2(size) - 2 of h/16, h/8, h/4, h/2, h (all five at 128)."""
    return [h // 16, h // 8, h // 4, h // 2, h][-(int(size).bit_length() - 3):]


def build_encoder(cfg: Config) -> keras.Model:
    """x (B, S, S, C) in [0, 1] -> (mean (B, d_z), std (B, d_z)) of q(z|x), float32."""
    h, act, dt = cfg.num_hidden_units, cfg.activation, compute_policy(cfg)
    x = keras.Input(shape=cfg.image_shape, name="x")
    y = x
    if cfg.celeba_network == "paper":
        convs = [(f, 2, "same") for f in paper_encoder_widths(h, cfg.dim_input_x)] + [(2 * h, 2, "valid")]
    else:
        convs = [(h // 4, 2, "same"), (h // 4, 2, "same"), (h // 2, 2, "same"), (h // 2, 2, "same"),
                 (h, 2, "same"), (h, 1, "valid")]
    for i, (filters, stride, padding) in enumerate(convs):
        y = keras.layers.Conv2D(filters, 3, strides=stride, padding=padding, name=f"conv{i}", dtype=dt)(y)
        if cfg.celeba_network == "original":
            y = keras.layers.BatchNormalization(name=f"conv{i}_bn", dtype=dt)(y)
        y = activation_layer(act, name=f"conv{i}_act", dtype=dt)(y)
    y = keras.layers.Flatten(dtype=dt)(y)
    if cfg.celeba_network == "paper":
        y = keras.layers.Dense(h, name="fc", dtype=dt)(y)
        y = activation_layer(act, name="fc_act", dtype=dt)(y)
    mean, std = GaussianHead(cfg.code_size, cfg.latent_variance_precision, name="q_z",
                             dtype="float32")(y)
    return keras.Model(x, [mean, std], name="encoder")


def _styled_block(y: tf.Tensor, w: tf.Tensor, size: int, filters: int, act: str, name: str,
                  dt, epsilon: float = INSTANCE_NORM_EPSILON) -> tf.Tensor:
    """Resize to size x size (unless already that size), conv 3x3, instance norm, style, act."""
    if y.shape[1] != size:
        y = Upsample(size, name=f"{name}_resize", dtype=dt)(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv", dtype=dt)(y)
    y = InstanceNorm(epsilon, name=f"{name}_norm", dtype=dt)(y)
    y = StyleModule(filters, name=f"{name}_style", dtype=dt)([y, w])
    return activation_layer(act, name=f"{name}_act", dtype=dt)(y)


def _mapping(v: tf.Tensor, h: int, act: str, dt) -> tf.Tensor:
    for i in range(MAPPING_LAYERS):
        v = keras.layers.Dense(h, name=f"mapping{i}", dtype=dt)(v)
        v = activation_layer(act, name=f"mapping{i}_act", dtype=dt)(v)
    return v


def build_decoder(cfg: Config) -> keras.Model:
    """z (B, d_z) -> mean image (B, S, S, C), float32: the Laplace location."""
    h, act, dt = cfg.num_hidden_units, cfg.activation, compute_policy(cfg)
    z = keras.Input(shape=(cfg.code_size,), name="z")
    if cfg.celeba_network == "paper":
        w = _mapping(z, h, act, dt)
        y = keras.layers.Reshape((1, 1, h), dtype=dt)(w)
        for i, (size, div) in enumerate(b for b in PAPER_BLOCKS if b[0] <= cfg.dim_input_x):
            y = _styled_block(y, w, size, h // div, act, f"block{i}", dt)
        y = keras.layers.Conv2D(h // 4, 3, padding="same", name="conv_final", dtype=dt)(y)
        y = activation_layer(act, name="conv_final_act", dtype=dt)(y)
        y = keras.layers.Conv2D(cfg.dim_input_channel, 3, padding="same", name="out", dtype="float32")(y)
    else:
        v = keras.layers.Dense(h, name="fc", dtype=dt)(z)
        v = activation_layer(act, name="fc_act", dtype=dt)(v)
        w = _mapping(v, h, act, dt)
        y = keras.layers.Reshape((1, 1, h), dtype=dt)(v)
        y = keras.layers.Conv2D(h, 1, name="conv_in", dtype=dt)(y)
        for i, (size, div, styled) in enumerate(ORIGINAL_STAGES):
            if styled:
                y = _styled_block(y, w, size, h // div, act, f"block{i}", dt,
                                  ORIGINAL_INSTANCE_NORM_EPSILON)
            else:
                y = Upsample(size, name=f"block{i}_resize", dtype=dt)(y)
                y = keras.layers.Conv2D(h // div, 3, padding="same", name=f"block{i}_conv", dtype=dt)(y)
                y = activation_layer(act, name=f"block{i}_act", dtype=dt)(y)
        y = keras.layers.Conv2D(cfg.dim_input_channel, 1, name="out", dtype="float32")(y)
    y = activation_layer(cfg.output_activation, name="out_act", dtype="float32")(y)
    return keras.Model(z, y, name="decoder")
