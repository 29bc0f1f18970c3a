"""The standard normal prior p(z) = N(0, I): the plain VAE baseline."""
from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

from ladder_tf.model import elbo
from ladder_tf.model.priors.base import Prior, seed_pair

tfd = tfp.distributions


class NormalPrior(Prior):
    """N(0, I) on z; the ELBO's cross-entropy is analytic, nothing to train or refit."""

    has_density = True

    def objective(self, z, mean, std, seed):
        return elbo.standard_normal_cross_entropy(mean, std), {}

    def sample(self, n: int, seed: int) -> tf.Tensor:
        return tf.random.stateless_normal([n, self.d_z], seed=seed_pair(seed))

    def log_prob(self, z: tf.Tensor) -> tf.Tensor:
        return tfd.MultivariateNormalDiag(tf.zeros(self.d_z)).log_prob(z)
