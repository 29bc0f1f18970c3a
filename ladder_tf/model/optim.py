"""Adam with the original's settings, per-epoch learning-rate schedules, guarded updates."""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tf_keras as keras

from ladder_tf.config import Config


def make_adam(cfg: Config, learning_rate: float, name: str) -> keras.optimizers.Adam:
    """Adam(beta1, beta2, epsilon from the config) with element-wise clipping.

    The original's settings: beta1 0.9, beta2 0.95, TensorFlow 1's epsilon 1e-8 (Keras'
    default is 1e-7), every gradient element clipped to [-grad_clip_value,
    grad_clip_value] (1.0; 0 turns clipping off).
    """
    clip = cfg.grad_clip_value or None
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=cfg.adam_beta1,
                                 beta_2=cfg.adam_beta2, epsilon=cfg.adam_epsilon,
                                 clipvalue=clip, name=name)


def exponential_lr(base: float, rate: float, epoch: int) -> float:
    """base * rate^(epoch - 1), epochs counted from 1 (the original's per-epoch schedule)."""
    return base * rate ** (epoch - 1)


def all_finite(*tensors: tf.Tensor | None) -> tf.Tensor:
    """True when every element of every (non-None) tensor is finite."""
    checks = [tf.reduce_all(tf.math.is_finite(t)) for t in tensors if t is not None]
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)


def apply_if(condition: tf.Tensor, optimizer: keras.optimizers.Optimizer,
             grads: Sequence[tf.Tensor], variables: Sequence[tf.Variable]) -> None:
    """Apply ``grads`` only when ``condition`` holds (a non-finite step is skipped whole).

    The optimiser must already be built for ``variables`` (see ``build_optimizer``), since
    slot variables cannot be created inside a conditional branch.
    """
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    if not pairs:
        return
    from ladder_tf import distributed  # inside strategy.run: cond in cross-replica context
    if distributed.in_replica_context_of_strategy():
        distributed.apply_if_replicated(condition, optimizer, pairs)
        return

    def apply() -> tf.Tensor:
        optimizer.apply_gradients(pairs)
        return tf.constant(True)

    tf.cond(condition, apply, lambda: tf.constant(False))


def build_optimizer(optimizer: keras.optimizers.Optimizer, variables: Sequence[tf.Variable]) -> None:
    """Create the optimiser's slots now, outside any tf.function or conditional."""
    optimizer.build(list(variables))
