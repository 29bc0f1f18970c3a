"""Load a trained run directory (config.json + checkpoints/) back into a VAE and its prior."""
from __future__ import annotations

import os
from dataclasses import dataclass

import tensorflow as tf

from ladder_tf import config as config_lib
from ladder_tf.config import Config
from ladder_tf.model.vae import VAE
from ladder_tf.model.priors.base import Prior
from ladder_tf.workflows import checkpoints
from ladder_tf.workflows.build import build_model, make_checkpoint


class RunNotFoundError(FileNotFoundError):
    """The path is not a run directory with a config and a checkpoint."""


@dataclass
class Run:
    """A trained model: its effective config, data VAE and prior, restored from a checkpoint."""

    config: Config
    vae: VAE
    prior: Prior
    run_dir: str
    checkpoint: str

    @property
    def name(self) -> str:
        return self.config.prior

    def reconstruct(self, x: tf.Tensor, seed=None) -> tf.Tensor:
        """Images (B, H, W, C) in [0, 1] -> decoded posterior means (``seed`` None) or decoded
        z ~ q(z|x) drawn with the stateless ``seed`` (2,), same shape."""
        return self.vae.reconstruct(x, None if seed is None else tf.constant(seed, tf.int32))

    def generate(self, n: int, seed: int) -> tf.Tensor:
        """n images decoded from z ~ p(z) of the trained prior."""
        return self.vae.decode(self.prior.sample(n, seed))


def load_run(run_dir: str, checkpoint: str | None = None) -> Run:
    """Restore the newest readable (or the given) checkpoint of ``run_dir``.

    Unreadable newer checkpoints are skipped with one warning (ladder_tf.workflows.checkpoints);
    raises RunNotFoundError when there is no config, no readable checkpoint, or the
    checkpoint does not fit the recorded config.
    """
    cfg_path = os.path.join(run_dir, "config.json")
    if not os.path.exists(cfg_path):
        raise RunNotFoundError(f"{run_dir} is not a run directory: it has no config.json")
    cfg = config_lib.load(cfg_path)
    vae, prior = build_model(cfg)
    ckpt = make_checkpoint(vae, prior)
    try:
        if checkpoint:
            ckpt.restore(checkpoints.explicit(checkpoint)).expect_partial()
        else:
            checkpoint = checkpoints.restore_newest(ckpt, os.path.join(run_dir, "checkpoints"),
                                                    repair=False, partial=True)
    except checkpoints.CheckpointError as err:
        raise RunNotFoundError(str(err)) from None
    if not checkpoint:
        raise RunNotFoundError(f"{run_dir} has no checkpoint under checkpoints/")
    return Run(cfg, vae, prior, run_dir, checkpoint)
