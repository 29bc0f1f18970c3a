"""Network builders per data set: ``build_networks(cfg)`` -> (encoder, decoder).

MNIST sets: ``mnist`` (the paper's, default) or, with ``mnist_network='original_fashion'``,
``mnist_original`` (the authors' code's Fashion-MNIST pair). CelebA and the other image data
sets (folder, tfds:NAME): ``celeba``, whose ``celeba_network`` key picks the paper's or the
original's layers inside that module, at the config's image size.
"""
from __future__ import annotations

import tf_keras as keras

from ladder_tf.config import Config, image_dataset


def build_networks(cfg: Config) -> tuple[keras.Model, keras.Model]:
    """The data VAE's encoder q(z|x) and decoder mean of p(x|z) for ``cfg.exp_name``."""
    if cfg.exp_name.startswith("mnist") and cfg.mnist_network == "original_fashion":
        from ladder_tf.model.networks import mnist_original as module
    elif cfg.exp_name.startswith("mnist"):
        from ladder_tf.model.networks import mnist as module
    elif image_dataset(cfg.exp_name):
        from ladder_tf.model.networks import celeba as module
    else:
        raise ValueError(f"no networks for dataset {cfg.exp_name!r} in this version")
    return module.build_encoder(cfg), module.build_decoder(cfg)
