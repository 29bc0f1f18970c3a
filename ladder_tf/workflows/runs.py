"""Load a trained run directory (config.json + checkpoints/) back into a VAE and its prior."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ladder_tf import config as config_lib
from ladder_tf.model.trained import InProcessModel
from ladder_tf.workflows import checkpoints
from ladder_tf.workflows.build import build_model, make_checkpoint


class RunNotFoundError(FileNotFoundError):
    """The path is not a run directory with a config and a checkpoint."""


@dataclass
class Run(InProcessModel):
    """A trained model (a ladder_tf.model.trained.TrainedModel): its effective config, data VAE
    and prior, restored from ``checkpoint`` of ``run_dir``."""

    run_dir: str
    checkpoint: str


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
