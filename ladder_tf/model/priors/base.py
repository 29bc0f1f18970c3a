"""The Prior interface: everything a prior on z needs, owned by the prior itself.

The training loop only ever calls these methods, so adding a prior never touches it:

- ``start(sample_images)``: once, before the first step of a new run (not on resume), for
  state that starts from training images (VampPrior's optional data start);
- ``begin_epoch(epoch)``: schedules (standard-normal pre-training, learning rates, masks);
- ``prior_terms(z, mean, std, seed)``: one forward pass serving both blocks of Algorithm 1:
  the prior term of the data ELBO (E_q[log p(z)] or its lower bound, differentiable w.r.t.
  the encoder) and the prior's own objective for its own variables;
- ``own_step(mean, std, seed, condition)``: the prior's own block of Algorithm 1 (its
  optimisers in order, fresh noise each, the data VAE held fixed), run after the data
  VAE's block in the default sequential step (ladder_tf.workflows.block_updates);
- ``variable_groups()`` / ``apply_gradients(grads, finite)``: the same update from
  gradients taken in one backward pass with the data VAE's (the opt-in fused step);
- ``end_of_epoch(sample_z, epoch)``: refits (mixture CAVI / EM), given a function that
  draws z for n training images;
- ``sample(n, seed)``: z for generation;
- what it offers beyond sampling, declared as class attributes (never probed by calling):
  ``has_density`` (log p(z) can be evaluated), ``density_is_estimate`` (only as the
  importance-sampled ``log_prob_estimate(z, n_samples, seed)``, else exactly as
  ``log_prob(z)``) and ``has_t_space`` (a latent t under z: ``encode``, ``decode`` and
  ``log_prob_t`` of t);
- ``figure_data(z_mean)`` and ``mixture_arrays(epoch)``: what the optional per-epoch
  outputs show (the workflow layer draws and writes them, ladder_tf.workflows.reporter);
- the prior is a ``tf.Module``: checkpointing it saves its variables and optimisers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ladder_tf.model import elbo
from ladder_tf.config import Config
from ladder_tf.model.optim import all_finite, apply_if, build_optimizer, exponential_lr, make_adam


def seed_pair(seed: int | tf.Tensor) -> tf.Tensor:
    """An int (or int scalar tensor) seed -> the stateless pair [seed, 0] every sample uses.

    Graph-safe, so ``prior.sample(n, seed)`` can be traced with tensor arguments (export).
    """
    return tf.stack([tf.cast(seed, tf.int32), tf.constant(0, tf.int32)])


SampleZ = Callable[[int, int], tf.Tensor]  # (n, seed) -> z (n, d_z) of n training images
SampleImages = Callable[[int, int], np.ndarray]  # (n, seed) -> n training images, float (n, H, W, C)


def fit_sample_count(requested: int, batch_size: int) -> int:
    """Codes a mixture refit draws for ``requested`` (fast_fit_samples / accurate_fit_samples).

    The original encodes whole training batches, ``requested // batch_size + 1`` of them
    (2,048 for 2,000 at batch 256, 20,224 for 20,000), and this reproduces that count.
    """
    return (requested // batch_size + 1) * batch_size


class PriorTerms(NamedTuple):
    """One evaluation of a prior's objective for both blocks of a step (B: the batch size).

    ``elbo_term`` (B,): the prior term of the data ELBO. ``own_term`` (B,): what the prior's
    own variables additionally ascend (zeros where the ELBO term already trains them).
    ``metrics``: scalar metrics, ``prior_objective`` among them.
    """

    elbo_term: tf.Tensor
    own_term: tf.Tensor
    metrics: dict[str, tf.Tensor]


@dataclass(frozen=True)
class DensityFigure:
    """A 2-D density with embedded points and its mixture's components, for one figure
    (``ladder_tf.figures.plot_density_2d`` draws it as ``figures/<name>_eNNN.png``).

    ``log_prob``: numpy (M, 2) float32 -> (M,) log-density. ``points`` (N, 2): the test
    images' embeddings. ``means`` (K, 2), ``covariances`` (K, 2, 2), ``weights`` (K,): the
    components drawn as ellipses. ``title``: the figure's title before ", epoch N".
    """

    name: str
    title: str
    log_prob: Callable[[np.ndarray], np.ndarray]
    points: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class ImageGridFigure:
    """Images (N, H, W, C), values clipped to [0, 1] when drawn, shown as one grid of
    ``ncols`` columns in ``figures/<name>_eNNN.png``."""

    name: str
    images: np.ndarray
    ncols: int


PriorFigure = DensityFigure | ImageGridFigure


@dataclass
class OptimizerGroup:
    """One optimiser and the variables it updates, with its per-epoch lr schedule."""

    optimizer: keras.optimizers.Optimizer
    variables: Callable[[], list[tf.Variable]]
    base_lr: float
    rate: float
    objective: Callable | None = None  # the terms that depend on these variables (None: all)


class Prior(tf.Module):
    """Base class. Subclasses implement ``objective`` and ``sample`` at least.

    ``uses_pretraining``: when True, epochs ``<= sg_pretraining`` put the standard normal
    in the data ELBO, and the prior's own step runs from epoch ``sg_pretraining`` on (the
    original's schedule: the prior gets one epoch of training before the data VAE sees it).

    ``trains_while_pretraining``: True when the prior's own objective is not the data ELBO
    (the prior VAE's L'(z)), so it has something to learn while the ELBO still uses N(0, I);
    False when its variables ascend the ELBO itself (VampPrior's pseudo-inputs), whose
    prior term does not depend on them during pre-training.

    The prior's own variables ascend the same ``objective`` that enters the data ELBO,
    and ``objective`` never depends on the data VAE's variables in a way the prior should
    train (it receives z, mean, std; VampPrior's encoder use is part of the data ELBO, as in
    the original).
    """

    uses_pretraining = False
    trains_while_pretraining = False
    has_density = False
    density_is_estimate = False
    has_t_space = False

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
                      base_lr: float, rate: float, objective: Callable | None = None) -> None:
        """Register an Adam optimiser for ``variables`` (built lazily by ``build``).

        ``objective``: optionally the part of ``objective`` that depends on ``variables``
        (same signature, same seed use), so the sequential step computes no terms whose
        gradient is zero for this group; the fused step always uses ``objective``.
        """
        optimizer = make_adam(self.cfg, base_lr, name)
        self.prior_optimizers.append(optimizer)
        self._groups.append(OptimizerGroup(optimizer, variables, base_lr, rate, objective))

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
                    seed: tf.Tensor) -> PriorTerms:
        """One evaluation of ``objective`` for both updates: (elbo_term, own_term, metrics).

        elbo_term (B,): the prior term of the data ELBO (N(0, I) cross-entropy while
        pre-training). own_term (B,): what the prior's own variables additionally ascend,
        computed on held (stop-gradient) z, mean, std so it never moves the data VAE: the
        objective while pre-training for priors that train then, zeros otherwise (outside
        pre-training the prior's gradient already comes through elbo_term).
        """
        if not self.uses_pretraining:
            value, metrics = self.objective(z, mean, std, seed)
            return PriorTerms(value, tf.zeros_like(value),
                              {**metrics, "prior_objective": tf.reduce_mean(value)})
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
        return PriorTerms(elbo_term, own, metrics)

    def variable_groups(self) -> list[list[tf.Variable]]:
        """The variables of each optimiser group, in registration order."""
        return [g.variables() for g in self._groups]

    def apply_gradients(self, grads: list[list[tf.Tensor]], finite: tf.Tensor) -> None:
        """Apply per-group gradients (of the loss to minimise) when active and ``finite``.

        While pre-training, the gradients of priors that do not train then are zeros (the
        ELBO's prior term is N(0, I)); they are applied only with
        ``count_pretraining_prior_steps``, as in ``own_step``.
        """
        ok = self._gate(self.active & finite)
        for group, gs, vs in zip(self._groups, grads, self.variable_groups()):
            apply_if(ok, group.optimizer, gs, vs)

    def _idle_while_pretraining(self) -> tf.Tensor | None:
        """When the idle pre-training steps are taken: the pre-training flag, else None.

        A prior whose variables ascend the ELBO's own prior term (``trains_while_pretraining``
        False) has nothing to learn while that term is N(0, I). The authors' code still runs
        its optimiser in epoch ``sg_pretraining`` (zero gradients), which advances Adam's step
        counter, so the bias correction no longer enlarges the first real steps (the first
        step is then about 0.45 learning rates per element instead of 1 with beta1 0.9 and
        beta2 0.95). ``count_pretraining_prior_steps`` reproduces that; off, those steps are
        skipped and Adam starts fresh when the prior enters the ELBO.
        """
        if self.trains_while_pretraining or not self.cfg.count_pretraining_prior_steps:
            return None
        return self.pretraining

    def _gate(self, ok: tf.Tensor) -> tf.Tensor:
        """``ok``, and not pre-training where the prior has nothing to do then (neither
        training then nor taking the idle steps)."""
        if self.trains_while_pretraining or self._idle_while_pretraining() is not None:
            return ok
        return ok & tf.logical_not(self.pretraining)

    def own_step(self, mean: tf.Tensor, std: tf.Tensor, seed: tf.Tensor,
                 condition: tf.Tensor | bool = True) -> tf.Tensor:
        """The prior's own block of Algorithm 1: each optimiser group in turn, data VAE fixed.

        For group g (in registration order: e.g. the prior VAE's networks, then its inner
        sigma), a fresh z ~ N(mean, std^2) and fresh objective noise from
        ``fold_in(seed, g)``, then one step on -objective (the group's own objective where it
        registered one) at the variables left by the groups before it: the order of the
        authors' separate optimiser runs. mean, std (B, d_z) are held fixed (the data VAE's
        posterior at its current weights). A group's step is applied only when the prior is
        active (and, for priors whose objective is the ELBO's own term, not pre-training),
        ``condition`` holds and its loss and gradients are finite; a non-finite group also
        skips the groups after it. Returns True when no group was non-finite.
        """
        mean, std = tf.stop_gradient(mean), tf.stop_gradient(std)
        ok = self._gate(tf.convert_to_tensor(condition) & self.active)
        idle = self._idle_while_pretraining()
        all_finite_groups = tf.constant(True)
        for g, group in enumerate(self._groups):
            z_seed, objective_seed = tf.unstack(tf.random.experimental.stateless_split(
                tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), g), 2))
            variables = group.variables()
            objective = group.objective or self.objective
            with tf.GradientTape() as tape:
                z = elbo.reparameterise(mean, std, z_seed)
                value, _ = objective(z, mean, std, objective_seed)
                loss = tf.nn.compute_average_loss(-value)  # the global batch's mean under a strategy
            grads = tape.gradient(loss, variables)
            if idle is not None:  # zero-gradient steps: only Adam's step counter moves
                grads = [d if d is None else tf.where(idle, tf.zeros_like(d), d) for d in grads]
            finite = all_finite(loss, *grads)
            apply_if(ok & finite, group.optimizer, grads, variables)
            ok = ok & finite
            all_finite_groups = all_finite_groups & finite
        return all_finite_groups

    def start(self, sample_images: SampleImages) -> None:
        """Called once before the first step of a new run (not on resume): set any state that
        starts from the training images. The default does nothing."""

    def end_of_epoch(self, sample_z: SampleZ, epoch: int) -> dict[str, float]:
        """Per-epoch refit; returns metrics for metrics.jsonl."""
        return {}

    def sample(self, n: int, seed: int) -> tf.Tensor:
        """n draws z ~ p(z), (n, d_z)."""
        raise NotImplementedError

    def log_prob(self, z: tf.Tensor) -> tf.Tensor:
        """log p(z) (B,), for priors with a tractable density (``has_density`` and not
        ``density_is_estimate``)."""
        raise NotImplementedError(f"{type(self).__name__} has no tractable log-density")

    def log_prob_estimate(self, z: tf.Tensor, n_samples: int, seed: int) -> tf.Tensor:
        """Importance-sampled log p(z) with ``n_samples`` draws, (N, d_z) -> (N,), for priors
        whose density is itself a latent-variable model (``density_is_estimate``)."""
        raise NotImplementedError(f"{type(self).__name__} has no estimate of its log-density")

    def figure_data(self, z_mean: np.ndarray) -> list[PriorFigure]:
        """What the prior's own per-epoch figures show, given the test images' posterior
        means z_mean (N, d_z); none by default."""
        return []

    def mixture_arrays(self, epoch: int) -> dict[str, np.ndarray]:
        """The fitted mixture's parameters at the end of ``epoch``, saved by the training run
        as ``mixture/mixture_eNNN.npz``; empty (no file) for priors without a mixture."""
        return {}
