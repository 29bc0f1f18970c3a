"""The Prior interface: everything a prior on z needs, owned by the prior itself.

The training loop only ever calls these methods, so adding a prior never touches it:

- ``begin_epoch(epoch)``: schedules (standard-normal pre-training, learning rates, masks);
- ``prior_terms(z, mean, std, seed)``: one forward pass serving both blocks of Algorithm 1:
  the prior term of the data ELBO (E_q[log p(z)] or its lower bound, differentiable w.r.t.
  the encoder) and the prior's own objective for its own variables;
- ``variable_groups()`` / ``apply_gradients(grads, finite)``: the prior's own update
  (its optimisers, schedules and the non-finite guard), from gradients the trainer takes
  in the same backward pass as the data VAE's; ``train_step`` is the same update as a
  standalone step with the data VAE held fixed;
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

    ``trains_while_pretraining``: True when the prior's own objective is not the data ELBO
    (the prior VAE's L'(z)), so it has something to learn while the ELBO still uses N(0, I);
    False when its variables ascend the ELBO itself (VampPrior's pseudo-inputs), whose
    prior term does not depend on them during pre-training.

    Contract of the fused step: the prior's own variables ascend the same ``objective``
    that enters the data ELBO, so outside pre-training their gradient comes from the data
    VAE's loss itself, and ``objective`` never depends on the data VAE's variables in a way
    the prior should train (it receives z, mean, std; VampPrior's encoder use is part of
    the data ELBO, as in the original).
    """

    uses_pretraining = False
    trains_while_pretraining = False


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

    def prior_terms(self, z: tf.Tensor, mean: tf.Tensor, std: tf.Tensor,
                    seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, dict[str, tf.Tensor]]:
        """One evaluation of ``objective`` for both updates: (elbo_term, own_term, metrics).

        elbo_term (B,): the prior term of the data ELBO (N(0, I) cross-entropy while
        pre-training). own_term (B,): what the prior's own variables additionally ascend,
        computed on held (stop-gradient) z, mean, std so it never moves the data VAE: the
        objective while pre-training for priors that train then, zeros otherwise (outside
        pre-training the prior's gradient already comes through elbo_term).
        """
        if not self.uses_pretraining:
            value, metrics = self.objective(z, mean, std, seed)
            return value, tf.zeros_like(value), {**metrics, "prior_objective": tf.reduce_mean(value)}
        pre = self.pretraining
        inputs = (z, mean, std)
        if self.trains_while_pretraining:
            held = tf.cast(pre, z.dtype)
            inputs = tuple(held * tf.stop_gradient(t) + (1.0 - held) * t for t in inputs)
        value, metrics = self.objective(*inputs, seed)
        metrics = {**metrics, "prior_objective": tf.reduce_mean(value)}
        elbo_term = tf.where(pre, elbo.standard_normal_cross_entropy(mean, std), value)
        own = tf.where(pre, value, tf.zeros_like(value)) if self.trains_while_pretraining \
            else tf.zeros_like(value)
        return elbo_term, own, metrics

    def elbo_cross_entropy(self, z: tf.Tensor, mean: tf.Tensor, std: tf.Tensor,
                           seed: tf.Tensor) -> tf.Tensor:
        """The prior term of the data ELBO, (B,): standard normal while pre-training."""
        return self.prior_terms(z, mean, std, seed)[0]

    def variable_groups(self) -> list[list[tf.Variable]]:
        """The variables of each optimiser group, in registration order."""
        return [g.variables() for g in self._groups]

    def apply_gradients(self, grads: list[list[tf.Tensor]], finite: tf.Tensor) -> None:
        """Apply per-group gradients (of the loss to minimise) when active and ``finite``."""
        for group, gs, vs in zip(self._groups, grads, self.variable_groups()):
            apply_if(self.active & finite, group.optimizer, gs, vs)

    def train_step(self, z: tf.Tensor, mean: tf.Tensor, std: tf.Tensor,
                   seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """A standalone step of every optimiser group on -objective, z, mean, std fixed.

        The trainer does the same update fused with the data VAE's step; this is the same
        block-coordinate update for callers that hold a z batch. Returns the objective's
        metrics and ``prior_finite`` (False when a non-finite step was skipped).
        """
        if not self._groups:
            return {}
        z, mean, std = (tf.stop_gradient(t) for t in (z, mean, std))
        variables = self.variable_groups()
        with tf.GradientTape() as tape:
            value, metrics = self.objective(z, mean, std, seed)
            loss = tf.nn.compute_average_loss(-value)  # the global batch's mean under a strategy
        grads = tape.gradient(loss, variables)
        finite = all_finite(loss, *[g for gs in grads for g in gs])
        self.apply_gradients(grads, finite)
        return {**metrics, "prior_objective": tf.reduce_mean(value), "prior_finite": finite}

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
