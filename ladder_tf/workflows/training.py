"""The one training loop: data-VAE step, prior step, end-of-epoch refit, checkpoints.

The loop knows only the Prior interface (ladder_tf.model.priors.base); it never asks which prior
it is training. Everything it writes goes to one run directory:

    config.json  metrics.jsonl  run_record.json  checkpoints/  tensorboard/  figures/  (prior artifacts)

(the per-epoch outputs: ladder_tf.workflows.reporter). Exporting the trained model is the
caller's step after ``fit`` (ladder_tf.workflows.train).
"""
from __future__ import annotations

import os
import time
from typing import Any, Iterable

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from ladder_tf import distributed, locks
from ladder_tf.config import Config, ConfigError
from ladder_tf.data import (ImageData, as_images, balanced_test_batch, eval_batches, train_batches,
                            warn_skipped_files)
from ladder_tf.model.optim import all_finite, build_optimizer, exponential_lr, make_adam
from ladder_tf.workflows import checkpoints, resume
from ladder_tf.workflows.interrupts import Interrupted, StopRequests, stop_requests
from ladder_tf.workflows.block_updates import FLAG_KEYS, BlockStep, failed_block
from ladder_tf.workflows.build import build_model, make_checkpoint
from ladder_tf.workflows.reporter import Reporter

EVAL_BATCH = 500
MAX_TRAIN_METRICS = 64  # length of the checkpointed running sums of an epoch's step metrics
TERM_KEYS = ("elbo", "reconstruction", "sigma_term", "entropy", "cross_entropy")
STEP_RESTART_SCHEDULE = ((25, 0.5), (50, 0.2), (75, 0.1))  # (last epoch before, lr factor)


class TrainingDivergedError(RuntimeError):
    """A non-finite loss or gradient: the step was not applied and training stopped."""


def ae_learning_rate(cfg: Config, epoch: int) -> float:
    """The data VAE's learning rate at ``epoch`` (from 1) for ``cfg.lr_schedule``.

    'exponential': lr * decay^(e-1). 'step_restart' (the original's CelebA schedule): after
    epochs 25, 50 and 75 the base becomes a half, a fifth and a tenth, and the decay
    restarts from there: lr * factor * decay^(e - boundary) for boundary < e (so epoch 26
    runs at lr / 2 * decay, epoch 25 still at lr * decay^24).
    """
    if cfg.lr_schedule == "exponential":
        return exponential_lr(cfg.learning_rate_ae, cfg.lr_decay_ae, epoch)
    factor, start = 1.0, 1
    for boundary, f in STEP_RESTART_SCHEDULE:
        if epoch > boundary:
            factor, start = f, boundary
    return exponential_lr(cfg.learning_rate_ae * factor, cfg.lr_decay_ae, epoch - start + 1)


def epoch_batches(x_train, cfg: Config, strategy: tf.distribute.Strategy, epoch: int, skip: int,
                  n: int) -> Iterable:
    """``n`` training batches of ``epoch`` after the first ``skip`` (global batches of
    ``cfg.batch_size`` images of ``x_train``).

    With a strategy other than the default, each input pipeline builds only its replicas'
    shares of every global batch (replica r gets rows r*b .. (r+1)*b - 1, b the per-replica
    batch), as a distributed dataset.
    """
    if distributed.is_default(strategy):
        return train_batches(x_train, cfg.batch_size, cfg.seed, epoch, skip).take(n)
    replicas = strategy.num_replicas_in_sync

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // ctx.num_input_pipelines
        return train_batches(x_train, cfg.batch_size, cfg.seed, epoch, skip,
                             replicas=replicas, pipeline=ctx.input_pipeline_id,
                             pipelines=ctx.num_input_pipelines).take(n * local)

    return strategy.distribute_datasets_from_function(dataset_fn)


class Trainer:
    """Trains ``cfg.prior`` on ``data`` into ``run_dir``; resumes from its checkpoints.

    ``data``: an ImageData whose ``x_train``/``x_test`` are uint8 arrays (MNIST) or lazily
    loaded image collections (``ladder_tf.data.image_files.ImageFiles``). ``strategy``: a
    tf.distribute strategy (None: one device); variables and optimiser state are created
    in its scope, each step runs per replica on its share of the global batch, and only
    the chief writes ``run_dir`` (see ladder_tf.distributed). ``allow_config_change``: resume
    even when keys outside ``config.SAFE_ON_RESUME`` differ from the recorded config.

    ``fit`` runs the whole loop; its parts, for tests and benchmarks: ``restore``,
    ``begin_epoch``, ``train_step`` (the compiled step, (x, seed) -> metrics) and ``run_epoch``.
    """

    def __init__(self, cfg: Config, data: ImageData, run_dir: str, show_progress: bool = True,
                 strategy: tf.distribute.Strategy | None = None, allow_config_change: bool = False):
        self.cfg, self.data, self.run_dir = cfg, data, run_dir
        self.allow_config_change = allow_config_change
        self.strategy = strategy or tf.distribute.get_strategy()
        self.distributed = not distributed.is_default(strategy)
        self.is_chief = distributed.is_chief(strategy)
        self.out_dir = run_dir if self.is_chief else distributed.worker_scratch_dir(self.strategy)
        self.show_progress = show_progress and self.is_chief
        replicas = self.strategy.num_replicas_in_sync
        if cfg.batch_size % replicas:
            raise ConfigError(f"batch_size {cfg.batch_size} is not divisible by the {replicas} replicas")
        n_batches = len(data.x_train) // cfg.batch_size
        if n_batches < 1:  # checked before anything is created: a refused run leaves no folder
            raise ConfigError(f"{len(data.x_train)} training images are fewer than one batch of "
                              f"{cfg.batch_size}; lower batch_size or use more images")
        os.makedirs(self.out_dir, exist_ok=True)
        with self.strategy.scope():
            self.vae, self.prior = build_model(cfg)
            self.opt_vae = make_adam(cfg, cfg.learning_rate_ae, "adam_vae")
            self.opt_sigma = make_adam(cfg, cfg.learning_rate_sigma, "adam_sigma")
        self.block_step = BlockStep(cfg, self.vae, self.prior, self.opt_vae, self.opt_sigma)
        # host-side counters, outside the strategy: plain variables, identical on every worker
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_done")
        # the current epoch's running sums of the step metrics (sorted keys) and their count,
        # checkpointed with the step so that a resumed epoch reports what an uninterrupted one would
        self.epoch_sums = tf.Variable(tf.zeros([MAX_TRAIN_METRICS], tf.float64), trainable=False,
                                      name="epoch_sums")
        self.epoch_sum_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch_sum_steps")
        self.ckpt = make_checkpoint(self.vae, self.prior, opt_vae=self.opt_vae,
                                    opt_sigma=self.opt_sigma, step=self.step,
                                    epochs_done=self.epochs_done, epoch_sums=self.epoch_sums,
                                    epoch_sum_steps=self.epoch_sum_steps)
        self.manager = tf.train.CheckpointManager(self.ckpt, os.path.join(self.out_dir, "checkpoints"),
                                                  max_to_keep=cfg.max_to_keep)
        self.steps_per_epoch = min(n_batches, cfg.steps_per_epoch or n_batches)
        self.test_x, self.test_y = balanced_test_batch(data.x_test, data.y_test, cfg.test_batch_size)
        self.eval_batch = EVAL_BATCH if as_images(data.x_train).in_memory else cfg.batch_size
        self.reporter = Reporter(self.out_dir, cfg, self.test_x, self.test_y, chief=self.is_chief)
        self.epochs_trained = 0  # by the last ``fit``
        self.stops = StopRequests()  # replaced by the installed one during ``fit``
        self.train_step = tf.function(self._distributed_step if self.distributed else self.block_step)
        self._eval_step = tf.function(self._eval_step_impl)

    # -- steps ------------------------------------------------------------------------
    def _distributed_step(self, x, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """One step on every replica (x: per-replica batches); metrics reduced over replicas."""
        return distributed.reduce_metrics(self.strategy, self.strategy.run(self.block_step,
                                                                           args=(x, seed)))

    def _eval_step_impl(self, x: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        terms = self.vae.elbo_terms(x, self.prior, seed, training=False).terms
        return {k: tf.reduce_sum(terms[k]) for k in TERM_KEYS}

    # -- helpers ----------------------------------------------------------------------
    def _training_subset(self, n: int, *key: int):
        """min(n, N) distinct training images chosen by (the run's seed, ``key``), in split order."""
        n = min(n, len(self.data.x_train))
        idx = np.random.default_rng([self.cfg.seed, *key]).choice(len(self.data.x_train), n, replace=False)
        return self.data.x_train[np.sort(idx)]

    def sample_training_z(self, n: int, seed: int) -> tf.Tensor:
        """One z ~ q(z|x) for each of n training images chosen by ``seed``: (n, d_z)."""
        zs = [self._sample_z(x, tf.constant([seed, i], tf.int32))
              for i, x in enumerate(eval_batches(self._training_subset(n, seed), self.eval_batch))]
        return tf.concat(zs, axis=0)

    def sample_training_images(self, n: int, seed: int) -> np.ndarray:
        """n training images chosen by ``seed`` (and the run's seed), float32 (n, H, W, C) in [0, 1]."""
        return as_images(self._training_subset(n, seed, 1)).floats()

    @tf.function
    def _sample_z(self, x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        mean, std = self.vae.encode(x)
        return mean + std * tf.random.stateless_normal(tf.shape(mean), seed)

    def evaluate(self, epoch: int) -> dict[str, float]:
        """Mean per-image ELBO terms on the whole test split (one z sample per image)."""
        sums, n = {k: 0.0 for k in TERM_KEYS}, 0
        for i, x in enumerate(eval_batches(self.data.x_test, self.eval_batch)):
            out = self._eval_step(x, tf.constant([self.cfg.seed + 7919 * (i + 1), epoch], tf.int32))
            n += int(x.shape[0])  # unreadable files of a lazily loaded split are skipped
            for k, v in out.items():
                sums[k] += float(v)
        return {f"test_{k}": v / max(n, 1) for k, v in sums.items()}

    def begin_epoch(self, epoch: int) -> None:
        """Set the learning rates and the prior's schedules of ``epoch`` (from 1)."""
        cfg = self.cfg
        self.opt_vae.learning_rate = ae_learning_rate(cfg, epoch)
        self.opt_sigma.learning_rate = exponential_lr(cfg.learning_rate_sigma, cfg.lr_decay_sigma, epoch)
        self.prior.begin_epoch(epoch)

    def restore(self) -> None:
        """Create the optimisers' state, then resume from the newest readable checkpoint (the
        chief's), if there is one.

        Unreadable newer checkpoints are skipped with a warning and never deleted; metrics
        rows of epochs after the restored one move to metrics.superseded.jsonl.
        """
        nets, sig = self.vae.network_variables, [self.vae.sigma]
        with self.strategy.scope():
            build_optimizer(self.opt_vae, nets)
            build_optimizer(self.opt_sigma, sig)
            self.prior.build()
        ckpt_dir = os.path.join(self.run_dir, "checkpoints")
        latest = checkpoints.restore_newest(self.ckpt, ckpt_dir, repair=self.is_chief)
        self.manager = tf.train.CheckpointManager(self.ckpt, os.path.join(self.out_dir, "checkpoints"),
                                                  max_to_keep=self.cfg.max_to_keep)  # repaired state
        if latest:
            resume.check_position(int(self.step), int(self.epochs_done), self.steps_per_epoch)
            print(f"resuming from step {int(self.step)} (epoch {int(self.epochs_done)} done)", flush=True)
        else:
            self.prior.start(self.sample_training_images)
        resume.recover_staged_row(self.out_dir, int(self.epochs_done))
        resume.supersede_metrics(self.out_dir, int(self.epochs_done))

    def save_checkpoint(self) -> str:
        """Write a checkpoint of the current step, refusing weights that cannot be trained on.

        Refused (TrainingDivergedError, nothing written) when a weight is non-finite or the
        ELBO of the fixed test batch is not finite at these weights: finite but enormous
        weights (a far too large learning rate) would otherwise be checkpointed and fail
        again on every resume.
        """
        variables = self.vae.trainable_variables + self.prior.trainable_variables
        probe = self._eval_step(tf.constant(self.test_x), tf.constant([self.cfg.seed, 0], tf.int32))
        if not bool(all_finite(*variables, probe["elbo"])):
            raise TrainingDivergedError(
                f"the weights after step {int(self.step)} are non-finite or give a non-finite ELBO; "
                f"not checkpointed ({self._last_checkpoint_text()}). Lower the learning rates or "
                "check the data.")
        try:
            return self.manager.save(checkpoint_number=int(self.step))
        except tf.errors.OpError as err:  # an unwritable or full checkpoint folder
            raise checkpoints.write_error(err, self.manager.directory, int(self.step)) from None

    def _last_checkpoint_text(self) -> str:
        latest = self.manager.latest_checkpoint
        return f"the last checkpoint is {os.path.basename(latest)}" if latest else "no checkpoint exists yet"

    # -- the loop ---------------------------------------------------------------------
    def fit(self) -> list[dict[str, Any]]:
        """Train until ``num_epochs``; returns the metrics rows of every epoch.

        The chief holds the run directory's lock throughout (ladder_tf.locks); the config is
        compared with the recorded one before anything is written (ladder_tf.workflows.resume).
        ``epochs_trained`` then counts the epochs this call trained (0: the run was complete).
        SIGTERM and Ctrl-C raise ``Interrupted`` (a KeyboardInterrupt; ladder_tf.workflows.interrupts)
        after a checkpoint of the last finished step when they arrive between steps.
        """
        with locks.run_lock(self.out_dir, "training", enabled=self.is_chief), stop_requests() as self.stops:
            return self._fit()

    def _fit(self) -> list[dict[str, Any]]:
        cfg = self.cfg
        changes = resume.check_config(self.run_dir, cfg, self.allow_config_change)
        self.restore()
        resume.record_config(self.out_dir, cfg, changes, int(self.step))
        start = int(self.epochs_done) + 1
        self.reporter.start(start)
        self.epochs_trained, status = 0, "failed"
        try:
            for epoch in range(start, cfg.num_epochs + 1):
                self.run_epoch(epoch)
                self.epochs_trained += 1
            status = "finished"
            return self.reporter.rows()
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.reporter.finish(status, int(self.epochs_done))
            if not self.is_chief:
                distributed.remove_scratch_dir(self.out_dir)

    def run_epoch(self, epoch: int) -> dict[str, Any]:
        """Train ``epoch`` (the rest of it after a resume), refit the prior, evaluate, write
        the epoch's outputs and checkpoint; returns its metrics row."""
        cfg = self.cfg
        self.begin_epoch(epoch)
        t0 = time.perf_counter()
        train_means, n_new = self._train_steps(epoch)
        train_seconds = time.perf_counter() - t0
        row: dict[str, Any] = {"epoch": epoch, "step": int(self.step)}
        row.update({f"train_{k}": v for k, v in train_means.items()})
        refit_t0 = time.perf_counter()
        row.update(self.prior.end_of_epoch(self.sample_training_z, epoch))
        if self.distributed:  # every worker refits; all take the chief's result
            distributed.broadcast_from_chief(self.strategy, [v for v in self.prior.variables
                                                             if not v.trainable])
        row["refit_seconds"] = time.perf_counter() - refit_t0
        if self.is_chief:
            warn_skipped_files(self.data, epoch)
        row.update(self.evaluate(epoch))
        row.update({"sigma": float(tf.abs(self.vae.sigma)), "lr_ae": ae_learning_rate(cfg, epoch),
                    "seconds_training": train_seconds, "epoch_seconds": time.perf_counter() - t0,
                    "images_per_second": n_new * cfg.batch_size / max(train_seconds, 1e-9)})
        bad = sorted(k for k, v in row.items() if isinstance(v, float) and not np.isfinite(v))
        if bad:
            raise TrainingDivergedError(
                f"epoch {epoch} ended with non-finite {', '.join(bad)}; its outputs and checkpoint "
                f"were not written ({self._last_checkpoint_text()}). Lower the learning rates or "
                "check the data.")
        self.epochs_done.assign(epoch)
        self._store_sums({}, 0)
        resume.stage_row(self.out_dir, row)  # the row waits for its checkpoint (recover_staged_row)
        self.save_checkpoint()
        self.reporter.epoch(row, self.vae, self.prior)
        resume.clear_staged_row(self.out_dir)
        return row

    def _train_steps(self, epoch: int) -> tuple[dict[str, float], int]:
        """The training steps of ``epoch`` not yet taken, checkpointing every
        ``checkpoint_every_steps``; (the epoch's mean step metrics, steps taken now)."""
        cfg, spe = self.cfg, self.steps_per_epoch
        done_in_epoch = int(self.step) - (epoch - 1) * spe  # checked on restore (resume)
        sums: dict[str, float] = {}
        in_sums = int(self.epoch_sum_steps) if done_in_epoch else 0  # steps already summed
        batches = epoch_batches(self.data.x_train, cfg, self.strategy if self.distributed else None,
                                epoch, done_in_epoch, spe - done_in_epoch)
        bar = tqdm(total=spe, initial=done_in_epoch, desc=f"epoch {epoch}/{cfg.num_epochs}",
                   disable=not self.show_progress, mininterval=1.0, dynamic_ncols=True)
        n_new, saved_at = 0, None
        with self.stops.deferred():  # a signal stops after the current step, checkpointed
            for x in batches:
                out = self.train_step(x, tf.stack([tf.constant(cfg.seed, tf.int64), self.step.read_value()]))
                flags = {k: bool(out.pop(k)) for k in (*FLAG_KEYS, "finite")}
                if not flags["finite"]:
                    bar.close()
                    raise TrainingDivergedError(
                        f"non-finite loss or gradient at epoch {epoch}, step {int(self.step) + 1}, in the "
                        f"{failed_block(flags)} update (-ELBO {float(-out['elbo']):.4g}): that update and "
                        f"the rest of the step were not applied, training stopped and nothing after the "
                        f"last checkpoint was saved ({self._last_checkpoint_text()}). Lower the learning "
                        "rates or check the data.")
                self.step.assign_add(1)
                if not sums:
                    sums = self._restored_sums(sorted(out), in_sums)
                n_new += 1
                in_sums += 1
                for k, v in out.items():
                    sums[k] += float(v)
                bar.update(1)
                if n_new % 10 == 0:
                    bar.set_postfix(neg_elbo=f"{-sums['elbo'] / in_sums:.2f}", sigma=f"{float(out['sigma']):.4f}")
                if int(self.step) % cfg.checkpoint_every_steps == 0:
                    self._store_sums(sums, in_sums)
                    self.save_checkpoint()
                    saved_at = int(self.step)
                if self.stops.pending:
                    break
        bar.close()
        if self.stops.pending:  # a signal during a step or while a batch was read: keep the steps
            if n_new and saved_at != int(self.step):
                self._store_sums(sums, in_sums)
                self.save_checkpoint()
            raise Interrupted(self.stops.pending, f"the last checkpoint holds step {int(self.step)}")
        return {k: v / max(in_sums, 1) for k, v in sums.items()}, n_new

    def _restored_sums(self, keys: list[str], steps: int) -> dict[str, float]:
        """The epoch's running sums for ``keys`` (sorted): the checkpointed ones after a resume."""
        if len(keys) > MAX_TRAIN_METRICS:
            raise RuntimeError(f"{len(keys)} step metrics exceed MAX_TRAIN_METRICS {MAX_TRAIN_METRICS}")
        values = self.epoch_sums.numpy() if steps else np.zeros(len(keys))
        return {k: float(values[i]) for i, k in enumerate(keys)}

    def _store_sums(self, sums: dict[str, float], steps: int) -> None:
        """Put the running sums (sorted keys) into the checkpointed variables."""
        values = np.zeros(MAX_TRAIN_METRICS)
        values[:len(sums)] = [sums[k] for k in sorted(sums)]
        self.epoch_sums.assign(values)
        self.epoch_sum_steps.assign(steps)
