"""Layers of the StyleGAN-like CelebA decoder (supplementary E.2, docs/original.md, section 2).

- ``InstanceNorm``: per-image, per-channel normalisation over height and width, with no
  learned scale or offset (the style module supplies them).
- ``StyleModule``: a dense layer maps the style vector w (B, S) to 2C values, split into a
  scale s and a bias b (each (B, C)); the feature map (B, H, W, C) becomes
  ``feature * (s + 1) + b``. The "+1" makes a freshly initialised module (s ~ 0) close to
  the identity, as in the original code.
- ``Upsample``: bilinear resize to a fixed square size (the supplementary's "Resize").

All three keep the layer's compute dtype, so they work under a mixed-precision policy;
instance-norm statistics are always computed in float32.
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

INSTANCE_NORM_EPSILON = 1e-5


class InstanceNorm(keras.layers.Layer):
    """(x - mean_hw) / sqrt(var_hw + eps) per image and channel; x: (B, H, W, C)."""

    def __init__(self, epsilon: float = INSTANCE_NORM_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x: tf.Tensor) -> tf.Tensor:
        x32 = tf.cast(x, tf.float32)
        mean, var = tf.nn.moments(x32, axes=[1, 2], keepdims=True)
        return tf.cast((x32 - mean) * tf.math.rsqrt(var + self.epsilon), x.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}


class StyleModule(keras.layers.Layer):
    """Modulate a feature map by the style vector: ``x * (s + 1) + b``, [s, b] = Dense(2C)(w).

    Called as ``layer([x, w])`` with x (B, H, W, C) and w (B, S); returns (B, H, W, C).
    Parameters: S * 2C + 2C.
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.dense = keras.layers.Dense(2 * channels, name="affine", dtype=self.dtype_policy)

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        x, w = inputs
        scale, bias = tf.split(self.dense(w), 2, axis=-1)
        return x * (scale[:, None, None, :] + 1.0) + bias[:, None, None, :]

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels}


class Upsample(keras.layers.Layer):
    """Bilinear resize of (B, h, w, C) to (B, size, size, C)."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.image.resize(x, [self.size, self.size], method="bilinear"), x.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size}
