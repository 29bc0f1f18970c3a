"""The Prior interface: everything a prior on z needs, owned by the prior itself.

The training loop only ever calls these methods, so adding a prior never touches it:

- ``begin_epoch(epoch)``: schedules (standard-normal pre-training, learning rates, masks);
- ``elbo_cross_entropy(z, mean, std, seed)``: E_q[log p(z)] (or its lower bound) per
  example, used inside the data VAE's objective and differentiable w.r.t. the encoder;
- ``train_step(z, mean, std, seed)``: the prior's own gradient update with the data VAE
  held fixed (a no-op for priors without trainable parameters);
- ``end_of_epoch(sample_z, epoch)``: refits (mixture CAVI / EM), given a function that
  draws z for n training images;
- ``sample(n, seed)``: z for generation; ``log_prob(z)`` where it exists;
- ``figures(...)`` and ``write_artifacts(...)``: optional per-epoch outputs;
- the prior is a ``tf.Module``: checkpointing it saves its variables and optimisers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ladder_tf import elbo
from ladder_tf.config import Config
from ladder_tf.optim import all_finite, apply_if, build_optimizer, exponential_lr, make_adam

def seed_pair(seed: int | tf.Tensor) -> tf.Tensor:
    """An int (or int scalar tensor) seed -> the stateless pair [seed, 0] every sample uses.

    Graph-safe, so ``prior.sample(n, seed)`` can be traced with tensor arguments (export).
    """
    return tf.stack([tf.cast(seed, tf.int32), tf.constant(0, tf.int32)])


SampleZ = Callable[[int, int], tf.Tensor]  # (n, seed) -> z (n, d_z) of n training images


@dataclass
class OptimizerGroup:
    """One optimiser and the variables it updates, with its per-epoch lr schedule."""

    optimizer: keras.optimizers.Optimizer
    variables: Callable[[], list[tf.Variable]]
    base_lr: float
    rate: float


class Prior(tf.Module):
    """Base class. Subclasses implement ``objective`` and ``sample`` at least.

    ``uses_pretraining``: when True, epochs ``<= sg_pretraining`` put the standard normal
    in the data ELBO, and the prior's own step runs from epoch ``sg_pretraining`` on (the
    original's schedule: the prior gets one epoch of training before the data VAE sees it).
    """

    uses_pretraining = False

    def __init__(self, cfg: Config, vae=None, name: str | None = None):
        super().__init__(name=name)
        self.cfg = cfg
        self.d_z = cfg.code_size
        self.pretraining = tf.Variable(False, trainable=False, name="pretraining")
        self.active = tf.Variable(True, trainable=False, name="active")
        self._groups: list[OptimizerGroup] = []
        self.prior_optimizers: list[keras.optimizers.Optimizer] = []  # tracked for checkpoints

    # -- construction helpers -------------------------------------------------------
    def add_optimizer(self, name: str, variables: Callable[[], list[tf.Variable]],
                      base_lr: float, rate: float) -> None:
        """Register an Adam optimiser for ``variables`` (built lazily by ``build``)."""
        optimizer = make_adam(self.cfg, base_lr, name)
        self.prior_optimizers.append(optimizer)
        self._groups.append(OptimizerGroup(optimizer, variables, base_lr, rate))

    def build(self) -> None:
        """Create optimiser slots; called once by the trainer before the first step."""
        for g in self._groups:
            build_optimizer(g.optimizer, g.variables())

    # -- the interface --------------------------------------------------------------
    def begin_epoch(self, epoch: int) -> None:
        """Set epoch-dependent state (epochs count from 1)."""
        sg = self.cfg.sg_pretraining
        self.pretraining.assign(self.uses_pretraining and epoch <= sg)
        self.active.assign(bool(self.cfg.TRAIN_prior) and (not self.uses_pretraining or epoch >= sg))
        for g in self._groups:
            g.optimizer.learning_rate = exponential_lr(g.base_lr, g.rate, epoch)

    def objective(self, z: tf.Tensor, mean: tf.Tensor, std: tf.Tensor,
                  seed: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """(E_q[log p(z)] or its lower bound per example (B,), dict of scalar metrics)."""
        raise NotImplementedError

    def elbo_cross_entropy(self, z: tf.Tensor, mean: tf.Tensor, std: tf.Tensor,
                           seed: tf.Tensor) -> tf.Tensor:
        """The prior term of the data ELBO, (B,): standard normal while pre-training."""
        if not self.uses_pretraining:
            return self.objective(z, mean, std, seed)[0]
        return tf.cond(self.pretraining,
                       lambda: elbo.standard_normal_cross_entropy(mean, std),
                       lambda: self.objective(z, mean, std, seed)[0])

    def train_step(self, z: tf.Tensor, mean: tf.Tensor, std: tf.Tensor,
                   seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """One gradient step of every optimiser group on -mean(objective), inputs fixed.

        Returns the objective's metrics and ``prior_finite`` (False when the step was
        skipped because the loss or a gradient was not finite).
        """
        if not self._groups:
            return {}
        z, mean, std = (tf.stop_gradient(t) for t in (z, mean, std))
        variables = [g.variables() for g in self._groups]
        with tf.GradientTape() as tape:
            value, metrics = self.objective(z, mean, std, seed)
            loss = -tf.reduce_mean(value)
        grads = tape.gradient(loss, variables)
        finite = all_finite(loss, *[g for gs in grads for g in gs])
        for group, gs, vs in zip(self._groups, grads, variables):
            apply_if(self.active & finite, group.optimizer, gs, vs)
        return {**metrics, "prior_objective": -loss, "prior_finite": finite}

    def end_of_epoch(self, sample_z: SampleZ, epoch: int) -> dict[str, float]:
        """Per-epoch refit; returns metrics for metrics.jsonl."""
        return {}

    def sample(self, n: int, seed: int) -> tf.Tensor:
        """n draws z ~ p(z), (n, d_z)."""
        raise NotImplementedError

    def log_prob(self, z: tf.Tensor) -> tf.Tensor:
        """log p(z) (B,), for priors with a tractable density."""
        raise NotImplementedError(f"{type(self).__name__} has no tractable log-density")

    def figures(self, fig_dir: str, epoch: int, z_mean: np.ndarray, labels: np.ndarray) -> list[str]:
        """Prior-specific figures of the test embeddings; returns the written paths."""
        return []

    def write_artifacts(self, run_dir: str, epoch: int) -> list[str]:
        """Prior-specific files (e.g. the fitted mixture .npz); returns the written paths."""
        return []
