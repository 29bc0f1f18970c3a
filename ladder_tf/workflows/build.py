"""The model of a config and its checkpoint layout, shared by training and loading a run."""
from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras as keras

from ladder_tf.config import Config
from ladder_tf.model.priors import build_prior
from ladder_tf.model.priors.base import Prior
from ladder_tf.model.vae import VAE


def build_model(cfg: Config) -> tuple[VAE, Prior]:
    """The data VAE and its prior, with every variable created (so checkpoints restore).

    Initial weights depend only on ``cfg.seed`` (Python, NumPy and TF global seeds are set).
    """
    keras.utils.set_random_seed(cfg.seed)
    vae = VAE(cfg)
    prior = build_prior(cfg, vae)
    return vae, prior


def make_checkpoint(vae: VAE, prior: Prior, **extra: Any) -> tf.train.Checkpoint:
    """The checkpoint layout shared by training, export and evaluation: ``vae`` and ``prior``,
    plus the trainer's optimisers and counters (``extra``) in a training checkpoint."""
    return tf.train.Checkpoint(vae=vae, prior=prior, **extra)
