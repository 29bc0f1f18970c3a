"""The data VAE: encoder q(z|x), decoder mean of p(x|z), learned Laplace scale sigma."""
from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from ladder_tf.model import elbo
from ladder_tf.config import Config
from ladder_tf.model.networks import build_networks


class ElboTerms(NamedTuple):
    """One batch's ELBO and what the training step needs besides it (B: the batch size).

    ``terms`` maps name -> (B,): ``reconstruction`` -(1/sigma) sum|x - mu|, ``sigma_term``
    -D log(2 sigma), ``entropy`` H[q(z|x)], ``cross_entropy`` the prior term and ``elbo``
    their sum. ``sigma``: the effective (floored) Laplace scale, a scalar. ``prior_own`` (B,):
    the prior's own objective term of the opt-in fused step (``Prior.prior_terms``).
    ``prior_metrics``: the prior's scalar metrics. ``z`` (B, d_z): the draw from q(z|x),
    whose mean and standard deviation are ``mean`` and ``std`` (B, d_z).
    """

    terms: dict[str, tf.Tensor]
    sigma: tf.Tensor
    prior_own: tf.Tensor
    prior_metrics: dict[str, tf.Tensor]
    z: tf.Tensor
    mean: tf.Tensor
    std: tf.Tensor

    def batch_means(self) -> dict[str, tf.Tensor]:
        """Scalars a training step reports: the batch means of ``terms``, ``sigma`` and the
        prior's metrics."""
        scalars = {**self.terms, "sigma": self.sigma, **self.prior_metrics}
        return {k: tf.reduce_mean(v) for k, v in scalars.items()}


class VAE(tf.Module):
    """Networks and sigma of the data VAE. The prior is separate (see ladder_tf.model.priors)."""

    def __init__(self, cfg: Config, name: str = "vae"):
        super().__init__(name=name)
        self.cfg = cfg
        self.encoder, self.decoder = build_networks(cfg)
        self.sigma = tf.Variable(cfg.sigma, dtype=tf.float32, name="sigma")
        self.num_values = int(cfg.dim_input_x * cfg.dim_input_y * cfg.dim_input_channel)

    @property
    def network_variables(self) -> list[tf.Variable]:
        return self.encoder.trainable_variables + self.decoder.trainable_variables

    def encode(self, x: tf.Tensor, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """x (B, H, W, C) in [0, 1] -> mean, std of q(z|x), each (B, d_z)."""
        return self.encoder(x, training=training)

    def decode(self, z: tf.Tensor, training: bool = False) -> tf.Tensor:
        """z (B, d_z) -> mean image (B, H, W, C)."""
        return self.decoder(z, training=training)

    def reconstruct(self, x: tf.Tensor, seed=None) -> tf.Tensor:
        """Decode the posterior mean (``seed`` None: the deterministic reconstruction of the
        figures), or one z ~ q(z|x) drawn with the stateless ``seed`` (2,) int32."""
        mean, std = self.encode(x)
        return self.decode(mean if seed is None else elbo.reparameterise(mean, std, seed))

    def likelihood_terms(self, x: tf.Tensor, z: tf.Tensor,
                         training: bool = False) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """log p(x|z) split as the ELBO reports it, and the effective (floored) sigma.

        x (B, H, W, C) in [0, 1], z (B, d_z). Returns ({``reconstruction``:
        -(1/sigma) sum|x - mu| (B,), ``sigma_term``: -D log(2 sigma) (B,)}, sigma). These are
        the only ELBO terms that depend on sigma, so sigma's own step needs nothing else.
        """
        x_mean = self.decode(z, training=training)
        sigma = elbo.effective_sigma(self.sigma, x, x_mean, self.cfg.sigma_floor)
        terms = {
            "reconstruction": elbo.laplace_reconstruction(x, x_mean, sigma),
            "sigma_term": tf.fill(tf.shape(z)[:1], elbo.laplace_normaliser(sigma, self.num_values)),
        }
        return terms, sigma

    def elbo_terms(self, x: tf.Tensor, prior, seed: tf.Tensor, training: bool = False) -> ElboTerms:
        """The per-example ELBO terms of a batch x (B, H, W, C), one z sample per image drawn
        with the stateless ``seed`` (2,); the prior's part comes from ``prior.prior_terms``."""
        z_seed, prior_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        mean, std = self.encode(x, training=training)
        z = elbo.reparameterise(mean, std, z_seed)
        terms, sigma = self.likelihood_terms(x, z, training)
        terms["entropy"] = elbo.gaussian_entropy(std)
        prior_part = prior.prior_terms(z, mean, std, prior_seed)
        terms["cross_entropy"] = prior_part.elbo_term
        terms["elbo"] = tf.add_n(list(terms.values()))
        return ElboTerms(terms, sigma, prior_part.own_term, prior_part.metrics, z, mean, std)
