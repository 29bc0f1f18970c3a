"""Train a run directory, then export its SavedModel: what `ladder train` and
`ladder train-celeba` run (the loop itself: ladder_tf.workflows.training)."""
from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from ladder_tf.config import Config
from ladder_tf.data import ImageData
from ladder_tf.workflows.export import export_run
from ladder_tf.workflows.training import Trainer

SAVED_MODEL_DIR = "saved_model"


def train(cfg: Config, data: ImageData, run_dir: str, show_progress: bool = True,
          strategy: tf.distribute.Strategy | None = None, export: bool = True,
          allow_config_change: bool = False) -> list[dict[str, Any]]:
    """Train (or resume) ``run_dir`` to ``cfg.num_epochs``; returns every epoch's metrics row.

    With ``export``, the chief then writes ``run_dir/saved_model`` from the last checkpoint
    when this call trained an epoch or there is no SavedModel yet. Raises what
    ``Trainer``/``Trainer.fit`` and ``export_run`` raise (ConfigError, RunLockedError,
    TrainingDivergedError, OSError, KeyboardInterrupt).
    """
    trainer = Trainer(cfg, data, run_dir, show_progress=show_progress, strategy=strategy,
                      allow_config_change=allow_config_change)
    rows = trainer.fit()
    saved_model = os.path.join(trainer.out_dir, SAVED_MODEL_DIR)
    if export and trainer.is_chief and (trainer.epochs_trained or not os.path.isdir(saved_model)):
        export_run(trainer.vae, trainer.prior, cfg, saved_model, checkpoint=trainer.manager.latest_checkpoint)
    return rows
