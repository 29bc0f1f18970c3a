"""Fit a prior to latents you already have: ``fit_prior(latents, kind)`` -> a FittedPrior.

For latents z (N, d) of any model (a VAE's posterior means, a two-stage VAE's codes, ...):

- ``"ladder"``: LaDDer's prior, a prior VAE on z with a Dirichlet-process Gaussian mixture
  p(t) (``LadderPrior``), trained by the prior part of Algorithm 1's block coordinate ascent
  as the training loop runs it, with the user's latents in the place of the data VAE's
  samples: per batch, the prior's own block (``Prior.own_step``: an Adam step of the prior
  VAE's networks on -L'(z), then one of its inner sigma, each with fresh noise); at each
  epoch's end the warm-started CAVI fit of the fast mixture on t of ``fast_fit_samples``
  latents, and every ``accurate_fit`` epochs and at the last a fresh ("accurate") DP fit on
  ``accurate_fit_samples`` latents (``LadderPrior.end_of_epoch``). The learning rates follow
  the config's per-epoch schedule. There is no data VAE to pre-train, so the prior trains
  from the first epoch (``sg_pretraining`` 0). log p(z) is importance-sampled.
- ``"gmm"``: maximum-likelihood EM (``GaussianMixtureEM``, scikit-learn's GaussianMixture).
- ``"dp-gmm"``: a truncated Dirichlet-process Gaussian mixture by CAVI
  (``BayesianGaussianMixture``, the fit LaDDer uses for p(t)), with scikit-learn's tolerance.

Every setting has the config's default (``ladder_tf.config.Config``): 50 epochs, batch 256,
prior learning rate 3e-4, 50 components, a 5 x 512 prior VAE; any config key can be passed by
name. d_t (``representation_size``) defaults to the config's 16, or d for fewer dimensions.
The prior VAE's inner sigma is kept in [0.05, 0.1] latent units (``inner_sigma_lb/ub``), so
latents should have roughly unit scale, as a VAE's do.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ladder_tf import config as config_lib
from ladder_tf.config import Config, ConfigError
from ladder_tf.model.priors.prior_vae import SKLEARN_TOL
from ladder_tf.workflows.fitted_prior import KINDS, FittedPrior, as_latents, build_density

OBJECTIVE_ROWS = 1000  # latents on which a LaDDer fit reports its objective L'(z) per epoch


def prior_config(kind: str, dim: int, epochs: int | None = None, batch_size: int | None = None,
                 learning_rate: float | None = None, n_components: int | None = None, seed: int = 0,
                 **settings: Any) -> Config:
    """The config of a prior of ``kind`` on ``dim``-dimensional latents: the defaults, the named
    arguments (``epochs`` num_epochs, ``learning_rate`` learning_rate_prior, ``n_components``
    n_mixtures) and any other config key in ``settings``. Raises ValueError for bad values."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    values = {"prior": "ladder" if kind == "ladder" else "gmm", "code_size": dim, "sg_pretraining": 0,
              "representation_size": min(Config.representation_size, dim), "seed": seed}
    named = {"num_epochs": epochs, "batch_size": batch_size, "learning_rate_prior": learning_rate,
             "n_mixtures": n_components}
    values.update({k: v for k, v in named.items() if v is not None})
    values.update(settings)
    try:
        return config_lib.from_dict(values)
    except ConfigError as err:
        raise ValueError(str(err)) from None


def fit_prior(latents, kind: str = "ladder", *, epochs: int | None = None, batch_size: int | None = None,
              learning_rate: float | None = None, n_components: int | None = None, seed: int = 0,
              verbose: bool = False, **settings: Any) -> FittedPrior:
    """Fit a prior of ``kind`` ("ladder", "gmm" or "dp-gmm") to ``latents`` (N, d), numpy or tensor.

    ``epochs``, ``batch_size``, ``learning_rate`` (the prior VAE's Adam step size): ladder
    only. ``n_components``: mixture components (the truncation for ladder's and dp-gmm's
    Dirichlet process). ``seed``: initial weights (Keras' global seeds are set from it, as
    training does), batches and fits. ``settings``: any other config key, e.g.
    ``representation_size=2`` or ``n_MC_samples=20``. ``verbose``: one line per epoch.

    Returns a FittedPrior: ``sample(n, seed)``, ``log_prob(z)`` (exact for gmm and dp-gmm,
    importance-sampled for ladder: ``log_prob_is_estimate``), ``save(path)``, ``load(path)``.
    Raises ValueError for bad latents or settings, FloatingPointError when training diverges.
    """
    z = as_latents(latents)
    cfg = prior_config(kind, z.shape[1], epochs, batch_size, learning_rate, n_components, seed, **settings)
    if len(z) < max(2, cfg.n_mixtures):
        raise ValueError(f"{len(z)} latents are too few for {cfg.n_mixtures} mixture components; "
                         "give more latents or a smaller n_components")
    keras.utils.set_random_seed(cfg.seed)
    density = build_density(kind, cfg)
    if kind == "ladder":
        return FittedPrior(kind, cfg, density, train_ladder(density, z, cfg, verbose))
    fit = density.fit(z, tol=SKLEARN_TOL / len(z)) if kind == "dp-gmm" else density.fit(z)
    summary = {"iterations": fit.n_iter, "converged": bool(fit.converged), "lower_bound": fit.lower_bound,
               "seconds": fit.seconds, "active_components": int(np.sum(density.weights.numpy() >= 1e-2))}
    return FittedPrior(kind, cfg, density, [summary])


def train_ladder(prior, z: np.ndarray, cfg: Config, verbose: bool = False) -> list[dict[str, Any]]:
    """Train ``prior`` (a LadderPrior) on latents z (N, d_z) for ``cfg.num_epochs`` epochs;
    returns one metrics row per epoch (the objective L'(z) on up to OBJECTIVE_ROWS latents,
    the mixture fits' metrics, seconds)."""
    n, latents = len(z), tf.constant(z)
    batch = min(cfg.batch_size, n)
    zeros = tf.zeros([batch, z.shape[1]])
    step = tf.function(lambda x, seed: prior.own_step(x, zeros, seed))  # std 0: z is the batch itself
    probe = latents[:OBJECTIVE_ROWS]
    objective = tf.function(lambda seed: tf.reduce_mean(prior.objective(probe, probe, tf.zeros_like(probe),
                                                                        seed)[0]))

    def sample_z(count: int, seed: int) -> tf.Tensor:  # the refits' latents, chosen by seed
        rows = np.random.default_rng([cfg.seed, seed]).choice(n, min(count, n), replace=False)
        return tf.gather(latents, np.sort(rows))

    prior.build()
    history, steps = [], 0
    for epoch in range(1, cfg.num_epochs + 1):
        t0 = time.perf_counter()
        prior.begin_epoch(epoch)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(n)
        for x in tf.data.Dataset.from_tensor_slices(z[order]).batch(batch, drop_remainder=True):
            if not bool(step(x, tf.constant([cfg.seed, steps], tf.int32))):
                raise FloatingPointError(f"non-finite loss or gradient at epoch {epoch}, step {steps + 1}; "
                                         "lower the learning rate or standardise the latents")
            steps += 1
        row = {"epoch": epoch, **prior.end_of_epoch(sample_z, epoch)}
        row["objective"] = float(objective(tf.constant([cfg.seed, -epoch], tf.int32)))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if verbose:
            print(f"epoch {epoch}/{cfg.num_epochs}: L'(z) {row['objective']:.4f}, "
                  f"{int(row.get('fast_fit_active_components', 0))} active components, "
                  f"{row['seconds']:.1f} s", flush=True)
    return history
