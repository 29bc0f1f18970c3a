"""Small building blocks shared by every network."""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


def symmetric_pad(pad: int, name: str) -> keras.layers.Layer:
    """(B, H, W, C) -> (B, H + 2 pad, W + 2 pad, C), mirroring the border rows and columns."""
    return keras.layers.Lambda(
        lambda t: tf.pad(t, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC"), name=name)


def depth_to_space(block: int, name: str) -> keras.layers.Layer:
    """(B, H, W, C) -> (B, block H, block W, C / block^2), as tf.nn.depth_to_space."""
    return keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, block), name=name)


def activation_layer(kind: str, **kwargs) -> keras.layers.Layer:
    """'relu' | 'leaky_relu' (slope 0.2, as tf.nn.leaky_relu) | 'tanh' | 'sigmoid' | 'linear'."""
    if kind == "leaky_relu":
        return keras.layers.LeakyReLU(alpha=0.2, **kwargs)
    return keras.layers.Activation(kind, **kwargs)


class GaussianHead(keras.layers.Layer):
    """Mean and standard deviation of a diagonal Gaussian posterior.

    mean = Dense(d)(h); std = ReLU(Dense(d)(h)) + floor, the floor being the config's
    ``latent_variance_precision`` (it keeps log std finite when the ReLU outputs 0).
    """

    def __init__(self, dim: int, floor: float, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.floor = dim, floor
        self.mean_layer = keras.layers.Dense(dim, name="mean")
        self.std_layer = keras.layers.Dense(dim, activation="relu", name="std")

    def call(self, h: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.mean_layer(h), self.std_layer(h) + self.floor

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim, "floor": self.floor}


def mlp(n_layers: int, units: int, activation: str, name: str) -> keras.Sequential:
    """``n_layers`` Dense(units) + activation blocks (the prior VAE's trunk)."""
    layers = []
    for i in range(n_layers):
        layers += [keras.layers.Dense(units, name=f"dense{i}"), activation_layer(activation, name=f"act{i}")]
    return keras.Sequential(layers, name=name)
