"""The GMM prior: a K-component full-covariance Gaussian mixture on z, refitted by EM.

    p(z) = sum_k w_k N(z; m_k, C_k + jitter I)

K = ``n_mixtures``; jitter = ``gmm_covariance_jitter`` (the original's 0.01 added to the
covariance diagonals of the mixture in the loss; ``log_prob`` is that density, while
samples and figures use the fitted covariances without it, as the original's). The
mixture is not trained by gradient: at the end of every epoch maximum-likelihood EM
(:class:`ladder_tf.model.mixture.GaussianMixtureEM`, the original's scikit-learn
``GaussianMixture``) refits it on one z ~ q(z|x) per training image, in whole batches
(docs/original.md, section 6):

- every epoch but the last, a "fast" fit on ``fast_fit_samples`` z with at most
  ``fast_fit_max_iter`` iterations, warm-started from the previous fit;
- at the last epoch, an "accurate" fit on ``accurate_fit_samples`` z with at most
  ``accurate_fit_max_iter`` iterations, started afresh with one initialisation (the
  original's final fit), used for samples, figures and the saved mixture.

The first fit of a run starts afresh (``GM_fit_restart`` k-means-seeded restarts): before
it the mixture is K equal-weight unit Gaussians (the original's epoch-1 prior), from which
EM could never separate its identical components. The data ELBO's prior term is the
Monte-Carlo cross-entropy E_q[log p(z)] with ``n_MC_samples`` draws.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ladder_tf.config import Config
from ladder_tf.model.mixture import GaussianMixtureEM
from ladder_tf.model.priors.base import (DensityFigure, Prior, PriorFigure, SampleZ, fit_sample_count,
                                         seed_pair)


class GMMPrior(Prior):
    """Full-covariance GMM on z; its state is the mixture's variables (checkpointed)."""

    uses_pretraining = False
    has_density = True

    def __init__(self, cfg: Config, vae=None, name: str | None = "gmm_prior"):
        super().__init__(cfg, vae, name=name)
        self.mixture = GaussianMixtureEM(
            cfg.n_mixtures, cfg.code_size, max_iter=cfg.fast_fit_max_iter, n_init=cfg.GM_fit_restart,
            warm_start=True, covariance_jitter=cfg.gmm_covariance_jitter, seed=cfg.seed,
            name="gmm")
        self.mixture.reset_to_standard_normal()

    def objective(self, z, mean, std, seed):
        """MC estimate of E_q[log p(z)] with ``n_MC_samples`` draws; (B,)."""
        value = self.mixture.expected_log_prob(mean, std, self.cfg.n_MC_samples, seed)
        return value, {}

    def end_of_epoch(self, sample_z: SampleZ, epoch: int) -> dict[str, float]:
        """EM refit on encoded training images; the mean log p(z) before and after it."""
        cfg = self.cfg
        accurate = epoch >= cfg.num_epochs
        n = cfg.accurate_fit_samples if accurate else cfg.fast_fit_samples
        z = sample_z(fit_sample_count(n, cfg.batch_size), epoch)
        before = float(tf.reduce_mean(self.mixture.log_prob(z)))
        if accurate:  # the original's final fit: a fresh one, one initialisation
            result = self.mixture.fit(z, max_iter=cfg.accurate_fit_max_iter, warm_start=False, n_init=1)
        else:
            result = self.mixture.fit(z, max_iter=cfg.fast_fit_max_iter)
        after = float(tf.reduce_mean(self.mixture.log_prob(z)))
        return {"gmm_accurate_fit": int(accurate), "gmm_fit_samples": int(z.shape[0]),
                "gmm_n_iter": result.n_iter, "gmm_converged": int(result.converged),
                "gmm_log_prob_before": before, "gmm_log_prob_after": after,
                "gmm_fit_seconds": result.seconds}

    def sample(self, n: int, seed: int) -> tf.Tensor:
        """n draws of the fitted mixture, without the loss's covariance jitter (the original's)."""
        return self.mixture.sample(n, seed=seed_pair(seed), jitter=False)

    def log_prob(self, z: tf.Tensor) -> tf.Tensor:
        """log p(z) (with the covariance jitter, as in the loss); (..., d_z) -> (...)."""
        return self.mixture.log_prob(z)

    def figure_data(self, z_mean: np.ndarray) -> list[PriorFigure]:
        """For d_z = 2: the mixture density, its components and the test embeddings z_mean."""
        if self.d_z != 2:
            return []
        m = self.mixture
        fitted = m.distribution(jitter=False)  # drawn without the loss's jitter, as the original
        return [DensityFigure("gmm_density", "GMM prior",
                              lambda p: fitted.log_prob(tf.constant(p, tf.float32)).numpy(), z_mean,
                              m.means.numpy(), m.covariances.numpy(), m.weights.numpy())]

    def mixture_arrays(self, epoch: int) -> dict[str, np.ndarray]:
        """The mixture's w/m/K, full and active (``to_npz_dict``), and the loss's jitter."""
        return {**self.mixture.to_npz_dict(), "covariance_jitter": np.asarray(self.cfg.gmm_covariance_jitter)}
