"""The prior VAE's networks (docs/original.md, section 3): q_beta(t|z) and the mean of p_alpha(z|t).

Both are MLPs of ``n_layers_inner_VAE`` Dense(``num_hidden_units_inner_VAE``) layers with
``inner_activation``. The encoder ends in the same Gaussian head as the data encoder (mean
linear, std = ReLU + ``latent_variance_precision``); the decoder ends in a linear Dense(d_z),
the mean of a Gaussian whose scalar scale (inner sigma) lives in the prior, not here.
"""
from __future__ import annotations

import tf_keras as keras

from ladder_tf.config import Config
from ladder_tf.model.networks.layers import GaussianHead, mlp


def build_prior_encoder(cfg: Config) -> keras.Model:
    """z (B, d_z) -> (mean (B, d_t), std (B, d_t)) of q(t|z); d_t = ``representation_size``."""
    z = keras.Input(shape=(cfg.code_size,), name="z")
    h = mlp(cfg.n_layers_inner_VAE, cfg.num_hidden_units_inner_VAE, cfg.inner_activation,
            name="trunk")(z)
    mean, std = GaussianHead(cfg.representation_size, cfg.latent_variance_precision, name="q_t")(h)
    return keras.Model(z, [mean, std], name="prior_encoder")


def build_prior_decoder(cfg: Config) -> keras.Model:
    """t (B, d_t) -> mean of p(z|t), (B, d_z)."""
    t = keras.Input(shape=(cfg.representation_size,), name="t")
    h = mlp(cfg.n_layers_inner_VAE, cfg.num_hidden_units_inner_VAE, cfg.inner_activation,
            name="trunk")(t)
    z_mean = keras.layers.Dense(cfg.code_size, name="z_mean")(h)
    return keras.Model(t, z_mean, name="prior_decoder")
