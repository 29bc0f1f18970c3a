"""Multi-device training: strategies, the chief, input sharding, guarded updates, broadcast.

The trainer runs its data-VAE step (and the prior's own step inside it) once per replica
with ``strategy.run``; this module holds what that needs:

- ``make_strategy('default' | 'mirrored' | 'multiworker')``: ``MirroredStrategy`` uses every
  local GPU (or CPU); ``MultiWorkerMirroredStrategy`` reads the cluster from ``TF_CONFIG``;
- ``is_chief``: only the chief writes the run directory (other workers write to a scratch
  directory that is deleted, since saving may involve collective reads);
- ``replica_seed``: each replica folds its id into the step seed, so replicas draw
  independent noise (z samples, Monte-Carlo draws);
- ``apply_if_replicated``: the non-finite guard of ``ladder_tf.model.optim.apply_if`` for replica
  context. Gradients are summed over replicas, every replica agrees on the condition, and
  the conditional update happens in cross-replica context (a ``tf.cond`` around the
  optimiser's synchronisation point in replica context is not supported by tf.distribute);
- ``reduce_metrics``: per-replica metrics to one value (MEAN; flags: all replicas);
- ``broadcast_from_chief``: after the end-of-epoch refit, every replica takes the values of
  replica 0 (the chief's), so all workers use exactly the same hyper prior.

Losses are scaled to the global batch (``tf.nn.compute_average_loss``: sum over the local
examples divided by the global batch), so summing gradients over replicas gives the mean
gradient of the global batch, the same as one device with the whole batch.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Sequence

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")
_DEFAULT_STRATEGY_TYPE = type(tf.distribute.get_strategy())


def make_strategy(kind: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy named ``kind``; call before any other TensorFlow work."""
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multiworker needs the TF_CONFIG environment variable "
                             '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                             '"task": {"type": "worker", "index": 0}}) on every worker')
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {kind!r}; choose one of {', '.join(STRATEGIES)}")


def is_default(strategy: tf.distribute.Strategy | None) -> bool:
    """True for None or the default (no-op, single-device) strategy."""
    return strategy is None or isinstance(strategy, _DEFAULT_STRATEGY_TYPE)


def _task(strategy: tf.distribute.Strategy) -> tuple[str | None, int, dict]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None, 0, {}
    cluster = resolver.cluster_spec().as_dict()
    return resolver.task_type, int(resolver.task_id or 0), cluster


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """The chief: task 'chief', or worker 0 of a cluster without a chief, or a single process."""
    if is_default(strategy):
        return True
    task_type, task_id, cluster = _task(strategy)
    if not cluster or task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_scratch_dir(strategy: tf.distribute.Strategy) -> str:
    """A fresh local directory for a non-chief worker's writes (remove with ``shutil.rmtree``)."""
    task_type, task_id, _ = _task(strategy)
    return tempfile.mkdtemp(prefix=f"ladder_tf_{task_type}{task_id}_")


def remove_scratch_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def replica_seed(seed: tf.Tensor) -> tf.Tensor:
    """``seed`` [2] with the replica id folded in (unchanged with one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return seed
    replica = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), replica)


def in_replica_context_of_strategy() -> bool:
    """True inside ``strategy.run`` of a real (non-default) strategy."""
    return tf.distribute.has_strategy() and tf.distribute.get_replica_context() is not None


def apply_if_replicated(condition: tf.Tensor, optimizer, pairs: Sequence[tuple]) -> None:
    """Apply ``pairs`` (grad, var) with ``optimizer`` iff ``condition`` holds on every replica.

    Call in replica context. Gradients are summed over replicas first (as the optimiser
    would), so the update equals the single-device update of the global batch.
    """
    ctx = tf.distribute.get_replica_context()
    pairs = optimizer.aggregate_gradients(list(pairs))
    grads = [g for g, _ in pairs]
    variables = [v for _, v in pairs]  # closed over: call_for_each_replica would unwrap args
    n_bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(condition, tf.float32))

    def cross_replica(strategy, n_bad, grads):
        ok = tf.equal(strategy.experimental_local_results(n_bad)[0], 0.0)

        def apply() -> tf.Tensor:
            strategy.extended.call_for_each_replica(
                lambda gs: optimizer.apply_gradients(list(zip(gs, variables)),
                                                     skip_gradients_aggregation=True),
                args=(grads,))
            return tf.constant(True)

        tf.cond(ok, apply, lambda: tf.constant(False))

    ctx.merge_call(cross_replica, args=(n_bad, grads))


def reduce_metrics(strategy: tf.distribute.Strategy, metrics: dict) -> dict:
    """Per-replica scalar metrics -> MEAN over replicas; boolean flags -> True iff all True."""
    out = {}
    for key, value in metrics.items():
        if strategy.experimental_local_results(value)[0].dtype == tf.bool:
            flags = strategy.run(lambda v: 1.0 - tf.cast(v, tf.float32), args=(value,))
            bad = strategy.reduce(tf.distribute.ReduceOp.SUM, flags, axis=None)
            out[key] = tf.equal(bad, 0.0)
        else:
            out[key] = strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
    return out


def broadcast_from_chief(strategy: tf.distribute.Strategy, variables: Sequence[tf.Variable]) -> None:
    """Set every copy of ``variables`` to replica 0's value (the chief's), via one all-reduce.

    Used after the end-of-epoch refit: each worker computes it (in parallel, so it costs
    no wall time), and the chief's result wins, so floating-point differences between
    machines can never leave workers with different hyper priors.
    """
    variables = list(variables)
    if is_default(strategy) or not variables:
        return

    def replica_fn():
        ctx = tf.distribute.get_replica_context()
        first = tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), tf.float64)
        values = [tf.cast(tf.convert_to_tensor(v), tf.float64) * first for v in variables]
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, values)

    reduced = strategy.run(tf.function(replica_fn))
    for var, value in zip(variables, reduced):
        var.assign(tf.cast(strategy.experimental_local_results(value)[0], var.dtype))


def describe(strategy: tf.distribute.Strategy | None) -> str:
    """One line: the strategy, replicas and (multi-worker) this task."""
    if is_default(strategy):
        return "single device"
    task_type, task_id, cluster = _task(strategy)
    where = f", task {task_type}:{task_id} of {json.dumps(cluster)}" if cluster else ""
    return f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replicas{where}"
