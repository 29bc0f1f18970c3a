"""Priors on z defined by a second, "prior" VAE on z (docs/original.md, sections 3, 4 and 6).

The data VAE's cross-entropy E_q(z|x)[log p(z)] is replaced by the prior VAE's ELBO on the
sampled z (one z per image, one t per z):

    L'(z) = E_q(t|z)[log N(z; mu_alpha(t), s^2 I)]       code_reconstruction
          + H[q_beta(t|z)]                               t_entropy
          + E_q(t|z)[log p(t)]                           t_cross_entropy

with s the learned scalar "inner sigma" (|value| clipped to [inner_sigma_lb, inner_sigma_ub]).

- ``LadderPrior`` (the paper's LaDDer, the original's ``ours``): p_xi(t) is a Dirichlet-process
  Gaussian mixture refitted by CAVI at the end of each epoch on t samples of training images
  (a warm-started "fast" fit every epoch, used by the loss; an "accurate" fresh fit every
  ``accurate_fit`` epochs and at the last, used for samples, figures and the .npz), and the
  cross-entropy is a Monte-Carlo estimate with ``n_MC_samples`` draws (supplementary A.2).
  From epoch ``use_mask_start`` the squared code errors of dimensions whose q(z|x) standard
  deviation exceeds 1 are dropped (the original's mask).
- ``HierarchicalPrior``: the same prior VAE with p(t) = N(0, I): analytic cross-entropy, no
  refit. The entropy of q(t|z) is computed for the actual d_t (the original hard-coded 2).

Both use the standard normal in the data ELBO for the first ``sg_pretraining`` epochs and
train the prior VAE (Adam on -L' with the data VAE fixed) from epoch ``sg_pretraining`` on.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from ladder_tf.config import Config
from ladder_tf.model import elbo
from ladder_tf.model.importance import latent_gaussian_log_prob_estimate
from ladder_tf.model.mixture import BayesianGaussianMixture
from ladder_tf.model.networks.prior_vae import build_prior_decoder, build_prior_encoder
from ladder_tf.model.priors.base import (DensityFigure, Prior, PriorFigure, SampleZ, fit_sample_count,
                                         seed_pair)

tfd = tfp.distributions

ACTIVE_THRESHOLD = 1e-2     # mixture weights below this are "inactive" (as the original's npz)
ENCODE_BATCH = 5000         # z -> t batch size for the end-of-epoch refits
ACCURATE_SEED_OFFSET = 100_003  # the accurate fit draws other images than the fast fit
T_NOISE_STREAM = 1 << 20    # second seed word of the t noise, apart from sample_z's z noise
SKLEARN_TOL = 1e-3          # the original's BayesianGaussianMixture tol (on the bound, not per sample)

HyperPriorView = tuple[Callable[[np.ndarray], np.ndarray], np.ndarray, np.ndarray, np.ndarray]


class PriorVAEPrior(Prior):
    """Shared prior VAE: networks, inner sigma, L'(z), training groups, 2-D figure data.

    Subclasses set the hyper prior: ``t_cross_entropy``, ``sample_t`` and ``hyper_prior_view``.
    """

    uses_pretraining = True
    trains_while_pretraining = True
    uses_mask = False
    has_density = True
    density_is_estimate = True  # p(z) = int p(z|t) p(t) dt has no closed form
    has_t_space = True

    def __init__(self, cfg: Config, vae=None, name: str | None = None):
        super().__init__(cfg, vae, name=name)
        self.d_t = cfg.representation_size
        self.encoder = build_prior_encoder(cfg)
        self.decoder = build_prior_decoder(cfg)
        self.inner_sigma = tf.Variable(cfg.inner_sigma, dtype=tf.float32,
                                       trainable=bool(cfg.TRAIN_inner_sigma), name="inner_sigma")
        self.use_mask = tf.Variable(False, trainable=False, name="use_mask")
        self.add_optimizer("adam_prior_vae", lambda: self.network_variables,
                           cfg.learning_rate_prior, cfg.lr_growth_prior)
        if cfg.TRAIN_inner_sigma:
            self.add_optimizer("adam_inner_sigma", lambda: [self.inner_sigma],
                               cfg.learning_rate_inner_sigma, cfg.lr_growth_prior,
                               objective=self.code_reconstruction_objective)

    @property
    def network_variables(self) -> list[tf.Variable]:
        """alpha and beta: the prior decoder's and encoder's weights."""
        return self.encoder.trainable_variables + self.decoder.trainable_variables

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        self.use_mask.assign(self.uses_mask and epoch >= self.cfg.use_mask_start)

    # -- the prior VAE ----------------------------------------------------------------
    def effective_inner_sigma(self) -> tf.Tensor:
        """The scale s of p(z|t): |inner_sigma|, clipped to [lb, ub] when it is trained."""
        s = tf.abs(self.inner_sigma)
        if self.cfg.TRAIN_inner_sigma:
            s = tf.clip_by_value(s, self.cfg.inner_sigma_lb, self.cfg.inner_sigma_ub)
        return s

    def encode(self, z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """z (B, d_z) -> mean, std of q(t|z), each (B, d_t)."""
        return self.encoder(z)

    def embed(self, z: tf.Tensor) -> tf.Tensor:
        """The t mean of z, (B, d_t): the embedding used in figures and interpolation."""
        return self.encoder(z)[0]

    def decode(self, t: tf.Tensor) -> tf.Tensor:
        """t (B, d_t) -> mean of p(z|t), (B, d_z)."""
        return self.decoder(t)

    def code_mask(self, std: tf.Tensor) -> tf.Tensor:
        """(B, d_z) 0/1: 0 where q(z|x)'s std exceeds 1 once the mask is on, else all ones."""
        keep = tf.cast(std <= 1.0, std.dtype)
        return tf.where(self.use_mask, keep, tf.ones_like(keep))

    def _code_reconstruction(self, z: tf.Tensor, std: tf.Tensor, t_mean: tf.Tensor,
                             t_std: tf.Tensor, t_seed: tf.Tensor) -> tf.Tensor:
        """E_q(t|z)[log N(z; mu_alpha(t), s^2 I)] from one t ~ q(t|z) drawn with ``t_seed``: (B,)."""
        t = elbo.reparameterise(t_mean, t_std, t_seed)
        mask = self.code_mask(std) if self.uses_mask else None
        return elbo.gaussian_reconstruction(z, self.decoder(t), self.effective_inner_sigma(), mask)

    def objective(self, z: tf.Tensor, mean: tf.Tensor, std: tf.Tensor,
                  seed: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """L'(z) per example (B,) and the batch means of its terms.

        ``seed`` [2] is split into the seed of the one t ~ q(t|z) used by the code
        reconstruction and the seed of the cross-entropy's Monte-Carlo draws.
        """
        t_seed, mc_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        t_mean, t_std = self.encoder(z)
        terms = {
            "code_reconstruction": self._code_reconstruction(z, std, t_mean, t_std, t_seed),
            "t_entropy": elbo.gaussian_entropy(t_std),
            "t_cross_entropy": self.t_cross_entropy(t_mean, t_std, mc_seed),
        }
        metrics = {k: tf.reduce_mean(v) for k, v in terms.items()}
        metrics["inner_sigma"] = self.effective_inner_sigma()
        return tf.add_n(list(terms.values())), metrics

    def code_reconstruction_objective(self, z: tf.Tensor, mean: tf.Tensor, std: tf.Tensor,
                                      seed: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The one term of L'(z) that depends on the inner sigma, with ``objective``'s t draw.

        The inner sigma's gradient of this equals that of ``objective`` for the same
        arguments (the entropy and cross-entropy of t do not involve it), without the
        Monte-Carlo cross-entropy's cost; the inner sigma's own optimiser step uses it.
        """
        t_seed, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        t_mean, t_std = self.encoder(z)
        return self._code_reconstruction(z, std, t_mean, t_std, t_seed), {}

    @tf.function(reduce_retracing=True)
    def _sample_t_given_z(self, z: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        t_mean, t_std = self.encoder(z)
        return elbo.reparameterise(t_mean, t_std, seed)

    def sample_t_given_z(self, z: tf.Tensor, seed: int) -> tf.Tensor:
        """One t ~ q(t|z) per row of z (N, d_z) -> (N, d_t), encoded in batches."""
        chunks = [self._sample_t_given_z(z[i:i + ENCODE_BATCH], tf.constant([seed, T_NOISE_STREAM + j]))
                  for j, i in enumerate(range(0, int(z.shape[0]), ENCODE_BATCH))]
        return tf.concat(chunks, axis=0)

    def sample(self, n: int, seed: int) -> tf.Tensor:
        """z = mean of p(z|t) for n draws t ~ p(t): (n, d_z)."""
        return self.decoder(self.sample_t(n, seed))

    def log_prob_estimate(self, z: tf.Tensor, n_samples: int, seed: int) -> tf.Tensor:
        """log p(z) = log int p(z|t) p(t) dt by importance sampling with q(t|z): (N, d_z) -> (N,)."""
        return latent_gaussian_log_prob_estimate(z, self.encode, self.decode, self.effective_inner_sigma(),
                                                 self.log_prob_t, n_samples, seed)

    # -- the hyper prior (subclasses) ------------------------------------------------
    def log_prob_t(self, t: tf.Tensor) -> tf.Tensor:
        """log p(t), (..., d_t) -> (...)."""
        raise NotImplementedError

    def t_cross_entropy(self, t_mean: tf.Tensor, t_std: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """E_q(t|z)[log p(t)], (B,)."""
        raise NotImplementedError

    def sample_t(self, n: int, seed: int) -> tf.Tensor:
        """n draws t ~ p(t) (the accurate fit where there is one), (n, d_t)."""
        raise NotImplementedError

    def hyper_prior_view(self) -> HyperPriorView:
        """(log p(t) on numpy (M, d_t) -> (M,), means (K, d_t), covariances, weights)."""
        raise NotImplementedError

    def hyper_prior_name(self) -> str:
        """Which p(t) ``log_prob_t`` and ``sample_t`` use now, in words (export records it)."""
        raise NotImplementedError

    # -- outputs ----------------------------------------------------------------------
    def figure_data(self, z_mean: np.ndarray) -> list[PriorFigure]:
        """For d_t = 2: the test images' t means over the hyper prior's density and components."""
        if self.d_t != 2:
            return []
        points = self.embed(tf.constant(z_mean, tf.float32)).numpy()
        log_prob, means, covariances, weights = self.hyper_prior_view()
        return [DensityFigure("latent2d", f"{self.cfg.prior}: t means of test images over p(t)",
                              log_prob, points, means, covariances, weights)]


class HierarchicalPrior(PriorVAEPrior):
    """The prior VAE with a fixed standard normal p(t) = N(0, I_{d_t})."""

    def __init__(self, cfg: Config, vae=None, name: str | None = "hierarchical_prior"):
        super().__init__(cfg, vae, name=name)

    def t_cross_entropy(self, t_mean: tf.Tensor, t_std: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Analytic E_q(t|z)[log N(t; 0, I)], (B,)."""
        return elbo.standard_normal_cross_entropy(t_mean, t_std)

    def sample_t(self, n: int, seed: int) -> tf.Tensor:
        return tf.random.stateless_normal([n, self.d_t], seed=seed_pair(seed))

    def log_prob_t(self, t: tf.Tensor) -> tf.Tensor:
        return tfd.MultivariateNormalDiag(tf.zeros(self.d_t)).log_prob(t)

    def hyper_prior_view(self) -> HyperPriorView:
        return (lambda t: self.log_prob_t(t).numpy(), np.zeros((1, self.d_t), np.float32),
                np.eye(self.d_t, dtype=np.float32)[None], np.ones(1, np.float32))

    def hyper_prior_name(self) -> str:
        return "standard_normal"


class LadderPrior(PriorVAEPrior):
    """LaDDer: the prior VAE with a Dirichlet-process Gaussian mixture p_xi(t).

    ``fast`` (finite Dirichlet weight prior, warm-started, refitted every epoch) enters the
    training loss; ``accurate`` (Dirichlet process, fresh fit with ``GM_fit_restart``
    initialisations) is used for samples, figures and artifacts once it has been fitted.
    Both are tf.Modules held as attributes, so their parameters are checkpointed.
    """

    uses_mask = True

    def __init__(self, cfg: Config, vae=None, name: str | None = "ladder_prior"):
        super().__init__(cfg, vae, name=name)
        # Both start as N(0, I) (Algorithm 1: "xi <- initialise as unit Gaussian").
        common = dict(weight_concentration_prior=cfg.weight_concentration_prior, seed=cfg.seed)
        self.fast = BayesianGaussianMixture(
            cfg.n_mixtures, self.d_t, weight_concentration_prior_type="dirichlet_distribution",
            max_iter=cfg.fast_fit_max_iter, warm_start=True, name="fast_mixture", **common)
        self.accurate = BayesianGaussianMixture(
            cfg.n_mixtures, self.d_t, weight_concentration_prior_type="dirichlet_process",
            max_iter=cfg.accurate_fit_max_iter, n_init=cfg.GM_fit_restart, warm_start=False,
            name="accurate_mixture", **common)
        self.has_accurate = tf.Variable(False, trainable=False, name="has_accurate")

    def display_mixture(self):
        """The accurate fit when one exists, else the fast fit (samples, figures, npz)."""
        return self.accurate if bool(self.has_accurate) else self.fast

    def t_cross_entropy(self, t_mean: tf.Tensor, t_std: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Monte-Carlo E_q(t|z)[log p_xi(t)] under the fast fit, ``n_MC_samples`` draws."""
        return self.fast.expected_log_prob(t_mean, t_std, self.cfg.n_MC_samples, seed)

    def sample_t(self, n: int, seed: int) -> tf.Tensor:
        """t ~ the accurate fit once it exists, else the fast fit (graph-safe choice)."""
        s = seed_pair(seed)
        return tf.cond(self.has_accurate, lambda: self.accurate.sample(n, seed=s),
                       lambda: self.fast.sample(n, seed=s))

    def log_prob_t(self, t: tf.Tensor) -> tf.Tensor:
        """log p_xi(t) under the mixture used for samples (the accurate fit once it exists)."""
        return tf.cond(self.has_accurate, lambda: self.accurate.log_prob(t),
                       lambda: self.fast.log_prob(t))

    def hyper_prior_name(self) -> str:
        """The accurate fit once it exists, else the fast one (as ``display_mixture``)."""
        return "accurate" if bool(self.has_accurate) else "fast"

    def hyper_prior_view(self) -> HyperPriorView:
        mixture = self.display_mixture()
        active = mixture.active_parameters(ACTIVE_THRESHOLD)
        return (lambda t: self.log_prob_t(tf.constant(t, tf.float32)).numpy(),
                np.asarray(active["means"]), np.asarray(active["covariances"]),
                np.asarray(active["weights"]))

    # -- refits -----------------------------------------------------------------------
    def end_of_epoch(self, sample_z: SampleZ, epoch: int) -> dict[str, float]:
        """Refit xi by CAVI on t of training images, from epoch ``sg_pretraining`` on.

        The fast fit uses ``fast_fit_samples`` images (seed = epoch); the accurate fit
        ``accurate_fit_samples`` other ones, every ``accurate_fit`` epochs and at the last;
        each rounded up to whole batches as the original (``fit_sample_count``).
        """
        cfg = self.cfg
        if epoch < cfg.sg_pretraining:
            return {}
        metrics = self._refit(self.fast, "fast_fit", sample_z,
                              fit_sample_count(cfg.fast_fit_samples, cfg.batch_size), epoch)
        if epoch % cfg.accurate_fit == 0 or epoch == cfg.num_epochs:
            metrics.update(self._refit(self.accurate, "accurate_fit", sample_z,
                                       fit_sample_count(cfg.accurate_fit_samples, cfg.batch_size),
                                       ACCURATE_SEED_OFFSET + epoch))
            self.has_accurate.assign(True)
        return metrics

    def _refit(self, mixture, prefix: str, sample_z: SampleZ, n: int, seed: int) -> dict[str, float]:
        t = self.sample_t_given_z(sample_z(n, seed), seed)
        result = mixture.fit(t, tol=SKLEARN_TOL / int(t.shape[0]))  # sklearn's test: unnormalised bound
        active = int(np.sum(mixture.weights.numpy() >= ACTIVE_THRESHOLD))
        return {f"{prefix}_samples": float(t.shape[0]),
                f"{prefix}_iterations": float(result.n_iter),
                f"{prefix}_converged": float(bool(result.converged)),
                f"{prefix}_seconds": float(result.seconds),
                f"{prefix}_lower_bound": float(result.lower_bound),
                f"{prefix}_active_components": float(active)}

    def mixture_arrays(self, epoch: int) -> dict[str, np.ndarray]:
        """Both fits' full and active parameters.

        Unprefixed keys (w_full, m_full, K_full, w_active, m_active, K_active, as the
        original's GM_prior_info.npz) hold the mixture used for samples; ``fast_*`` and
        ``accurate_*`` each fit (``accurate_*`` only once it exists); also ``epoch`` and
        ``has_accurate``.
        """
        arrays: dict[str, np.ndarray] = {"epoch": np.asarray(epoch),
                                         "has_accurate": np.asarray(bool(self.has_accurate))}
        arrays.update({k: np.asarray(v) for k, v in self.display_mixture().to_npz_dict().items()})
        fits = [("fast", self.fast)] + ([("accurate", self.accurate)] if bool(self.has_accurate) else [])
        for prefix, mixture in fits:
            arrays.update({f"{prefix}_{k}": np.asarray(v) for k, v in mixture.to_npz_dict().items()})
        return arrays
