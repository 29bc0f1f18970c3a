"""The VampPrior (Tomczak & Welling, 2018): a uniform mixture of the encoder's posteriors.

    p(z) = (1/K) sum_k N(z; mu(u_k), diag(sigma(u_k)^2))

where u_1..u_K are learned pseudo-inputs (images of the data's shape, ``cfg.image_shape``)
and (mu, sigma) is the data VAE's own encoder. As in the authors' code, the pseudo-inputs
start from a standard normal (``pseudo_inputs_init="data"``, beyond the paper: from K
training images) and have their own Adam (lr ``learning_rate_prior``, growing by
``lr_growth_prior`` per epoch) on -ELBO, which with the data VAE fixed is the negated
Monte-Carlo cross-entropy term; the data VAE's step also differentiates through the
pseudo-inputs' encodings (the prior depends on the encoder), which is the VampPrior's
defining coupling. The first ``sg_pretraining`` epochs use the standard normal instead.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from ladder_tf.config import Config
from ladder_tf.model import elbo
from ladder_tf.model.priors.base import ImageGridFigure, Prior, PriorFigure, seed_pair

tfd = tfp.distributions

MAX_PSEUDO_INPUTS_SHOWN = 100


class VampPrior(Prior):
    """K pseudo-inputs ``pseudo_inputs`` (K, H, W, C) pushed through ``vae.encoder``."""

    uses_pretraining = True
    has_density = True

    def __init__(self, cfg: Config, vae=None, name: str | None = "vamp_prior"):
        super().__init__(cfg, vae, name=name)
        if vae is None:
            raise ValueError("the VampPrior needs the data VAE (its encoder defines the prior)")
        # A bound method is not tracked by tf.Module / tf.train.Checkpoint, so the encoder's
        # variables stay owned (and checkpointed) by the VAE alone, not also by the prior.
        self._encode = vae.encode
        self.n_components = cfg.n_mixtures
        init = tf.random.stateless_normal((cfg.n_mixtures, *cfg.image_shape), seed=[cfg.seed, 1])
        self.pseudo_inputs = tf.Variable(init, name="pseudo_inputs")
        self.add_optimizer("adam_pseudo_inputs", lambda: [self.pseudo_inputs],
                           cfg.learning_rate_prior, cfg.lr_growth_prior)

    def start(self, sample_images) -> None:
        """``pseudo_inputs_init = "data"`` (beyond the paper): the pseudo-inputs start as K
        training images chosen by the seed instead of N(0, 1) noise."""
        if self.cfg.pseudo_inputs_init == "data":
            self.pseudo_inputs.assign(tf.convert_to_tensor(sample_images(self.n_components, 0), tf.float32))

    def components(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Means and standard deviations of the K components, each (K, d_z)."""
        # A tensor, not the variable: Keras Lambda layers warn about untracked variables.
        return self._encode(tf.convert_to_tensor(self.pseudo_inputs))

    def distribution(self) -> tfd.MixtureSameFamily:
        """The current prior as a tfp mixture (batch shape [], event shape [d_z])."""
        mean, std = self.components()
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=tf.zeros([self.n_components])),
            components_distribution=tfd.MultivariateNormalDiag(mean, std))

    def objective(self, z, mean, std, seed):
        """MC estimate of E_q[log p(z)] with ``n_MC_samples`` draws per row; (B,).

        A quadratic form in the draws (``elbo.diagonal_mixture_cross_entropy``): the same
        estimate as evaluating ``log_prob`` at the draws, within float32 rounding
        (tests/test_elbo.py), about ten times faster forward and backward
        (``benchmarks/mixture_cross_entropy.py --family diagonal``).
        """
        means, stds = self.components()
        value = elbo.diagonal_mixture_cross_entropy(mean, std, means, stds, self.cfg.n_MC_samples, seed)
        return value, {}

    def sample(self, n: int, seed: int) -> tf.Tensor:
        return self.distribution().sample(n, seed=seed_pair(seed))

    def log_prob(self, z: tf.Tensor) -> tf.Tensor:
        """log p(z) for z (..., d_z) -> (...)."""
        return self.distribution().log_prob(z)

    def figure_data(self, z_mean: np.ndarray) -> list[PriorFigure]:
        """The pseudo-inputs themselves (the first MAX_PSEUDO_INPUTS_SHOWN) as an image grid."""
        return [ImageGridFigure("pseudo_inputs", self.pseudo_inputs.numpy()[:MAX_PSEUDO_INPUTS_SHOWN], 10)]
