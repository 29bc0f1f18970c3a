"""One training step of Algorithm 1's block coordinate ascent, per batch.

``block_update = "sequential"`` (the default; Algorithm 1 and the authors' code, see
docs/original.md, "Per-batch update order"): the blocks are updated one after the other,
each at the parameters the previous one left and with its own stateless noise:

1. data VAE (theta, phi): Adam on -ELBO (one z ~ q(z|x) per image);
2. sigma: Adam on -ELBO at the updated networks, a fresh z (only the likelihood terms
   depend on sigma, so only they are computed);
3. the prior's own optimiser groups in order (prior VAE alpha, beta, then its inner sigma;
   VampPrior's pseudo-inputs), each on -(its objective) with a fresh z from the updated
   encoder (``Prior.own_step``); the mixture xi is refitted at the epoch's end.

Steps 2 and 3 share one encoder pass at the updated weights: sigma's and the prior's
steps change neither phi nor the batch, so every later block sees the same q(z|x).

``block_update = "fused"`` (opt-in, faster): every block's gradient from one tape at the
old parameters with one noise draw, applied together: a simultaneous (Jacobi) update, not
block coordinate ascent. tests/test_block_updates.py shows the two differ; the README
gives the measured effect on results and speed.

Every block is guarded: its update is applied only when its loss and gradients are finite
and every earlier block of the step was finite too, so after a non-finite block nothing
later in the step changes.
"""
from __future__ import annotations

import tensorflow as tf

from ladder_tf import distributed
from ladder_tf.model import elbo
from ladder_tf.config import Config
from ladder_tf.model.vae import VAE, ElboTerms
from ladder_tf.model.optim import all_finite, apply_if
from ladder_tf.model.priors.base import Prior

BLOCK_UPDATES = ("sequential", "fused")
FLAG_KEYS = {"finite_data": "data VAE", "finite_sigma": "sigma", "finite_prior": "prior"}


def block_seeds(seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The step seed [2] -> independent stateless seeds of the data, sigma and prior blocks."""
    data, sigma, prior = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), 3))
    return data, sigma, prior


class BlockStep:
    """The per-batch update of the data VAE, sigma and the prior's own variables.

    ``__call__(x, seed)`` runs one step (x: (B, H, W, C) floats in [0, 1], seed [2]) and
    returns the batch means of the ELBO terms and the prior's metrics, and boolean flags:
    ``finite`` (every block finite) and FLAG_KEYS' per-block ones (False from the first
    non-finite block of the step on, see ``failed_block``).
    Call it inside a tf.function; under a tf.distribute strategy, inside ``strategy.run``.
    """

    def __init__(self, cfg: Config, vae: VAE, prior: Prior, opt_vae, opt_sigma):
        if cfg.block_update not in BLOCK_UPDATES:
            raise ValueError(f"block_update must be one of {BLOCK_UPDATES}, not {cfg.block_update!r}")
        self.cfg, self.vae, self.prior = cfg, vae, prior
        self.opt_vae, self.opt_sigma = opt_vae, opt_sigma

    def data_variables(self) -> tuple[list[tf.Variable], list[tf.Variable]]:
        """(encoder + decoder weights, [sigma]), each empty when its TRAIN_ flag is off.

        As in the original, sigma is trained only together with the data VAE.
        """
        nets = self.vae.network_variables if self.cfg.TRAIN_VAE else []
        return nets, ([self.vae.sigma] if self.cfg.TRAIN_sigma and self.cfg.TRAIN_VAE else [])

    def __call__(self, x: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        seed = distributed.replica_seed(seed)
        if self.cfg.block_update == "fused":
            return self.fused(x, seed)
        return self.sequential(x, seed)

    # -- sequential (default) -----------------------------------------------------------
    def sequential(self, x: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        nets, sig = self.data_variables()
        data_seed, sigma_seed, prior_seed = block_seeds(seed)
        with tf.GradientTape() as tape:
            out = self.vae.elbo_terms(x, self.prior, data_seed, training=True)
            loss = tf.nn.compute_average_loss(-out.terms["elbo"])  # scaled to the global batch
        grads = tape.gradient(loss, nets)
        data_ok = all_finite(loss, *grads)
        apply_if(data_ok, self.opt_vae, grads, nets)

        # q(z|x) at the updated encoder, shared by the sigma and prior blocks
        mean, std = (tf.stop_gradient(t) for t in self.vae.encode(x, training=True))
        sigma_ok = data_ok
        if sig:
            with tf.GradientTape() as tape:
                z = elbo.reparameterise(mean, std, sigma_seed)
                likelihood, _ = self.vae.likelihood_terms(x, z, training=True)
                sigma_loss = tf.nn.compute_average_loss(-tf.add_n(list(likelihood.values())))
            sigma_grads = tape.gradient(sigma_loss, sig)
            sigma_ok = data_ok & all_finite(sigma_loss, *sigma_grads)
            apply_if(sigma_ok, self.opt_sigma, sigma_grads, sig)
        prior_ok = sigma_ok & self._prior_block(mean, std, prior_seed, sigma_ok)
        return self._metrics(out, data_ok, sigma_ok, prior_ok)

    def _prior_block(self, mean: tf.Tensor, std: tf.Tensor, seed: tf.Tensor,
                     condition: tf.Tensor) -> tf.Tensor:
        """``Prior.own_step``, skipped outright (no compute) while the prior is inactive."""
        if not self.prior.variable_groups():
            return tf.constant(True)
        if distributed.in_replica_context_of_strategy():
            # a tf.cond around the optimisers' synchronisation is not supported there
            return self.prior.own_step(mean, std, seed, condition)
        return tf.cond(self.prior.active, lambda: self.prior.own_step(mean, std, seed, condition),
                       lambda: tf.constant(True))

    # -- fused (opt-in) -----------------------------------------------------------------
    def fused_gradients(self, x: tf.Tensor, seed: tf.Tensor):
        """Every block's gradient from one forward and one backward pass at the old parameters.

        The data VAE and sigma descend -ELBO with the prior fixed; the prior's own variables
        descend -objective with the data VAE fixed, through the ELBO's prior term, or, while
        the ELBO still uses N(0, I), through ``prior_own`` on held inputs. Unlike the
        sequential step, the prior's gradient is taken at the old encoder with the data
        block's z.

        Returns (the ElboTerms, (loss, prior_loss), data_grads, prior_grads per optimiser group).
        """
        nets, sig = self.data_variables()
        prior_groups = self.prior.variable_groups()
        prior_vars = [v for vs in prior_groups for v in vs]
        with tf.GradientTape() as tape:
            out = self.vae.elbo_terms(x, self.prior, seed, training=True)
            loss = tf.nn.compute_average_loss(-out.terms["elbo"])
            prior_loss = tf.nn.compute_average_loss(-out.prior_own)
            total = loss + prior_loss
        grads = tape.gradient(total, nets + sig + prior_vars)
        data_grads, rest, grouped = grads[:len(nets) + len(sig)], grads[len(nets) + len(sig):], []
        for vs in prior_groups:
            grouped.append(rest[:len(vs)])
            rest = rest[len(vs):]
        return out, (loss, prior_loss), data_grads, grouped

    def fused(self, x: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        nets, sig = self.data_variables()
        out, losses, data_grads, prior_grads = self.fused_gradients(x, seed)
        finite = all_finite(*losses, *data_grads, *[g for gs in prior_grads for g in gs])
        apply_if(finite, self.opt_vae, data_grads[:len(nets)], nets)
        apply_if(finite, self.opt_sigma, data_grads[len(nets):], sig)
        self.prior.apply_gradients(prior_grads, finite)
        return self._metrics(out, finite, finite, finite)

    @staticmethod
    def _metrics(out: ElboTerms, *flags: tf.Tensor) -> dict[str, tf.Tensor]:
        metrics = out.batch_means()
        metrics.update(zip(FLAG_KEYS, flags))
        metrics["finite"] = flags[-1]
        return metrics


def failed_block(flags: dict[str, bool]) -> str:
    """The first block whose flag is False in a step's output (see BlockStep), or ''."""
    return next((name for key, name in FLAG_KEYS.items() if not flags[key]), "")
