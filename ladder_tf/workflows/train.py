"""Train a run directory, then export its SavedModel: what `ladder train` and
`ladder train-celeba` run (the loop itself: ladder_tf.workflows.training)."""
from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from ladder_tf.config import Config
from ladder_tf.data import ImageData
from ladder_tf.export_format import INFO_ASSET, SAVED_MODEL_FILE
from ladder_tf.workflows.export import export_run, remove_stale_temp_dirs
from ladder_tf.workflows.training import Trainer

SAVED_MODEL_DIR = "saved_model"


def exported_checkpoint(saved_model: str) -> str | None:
    """The checkpoint (basename) the SavedModel at ``saved_model`` was exported from; None
    when it is missing, incomplete or does not say."""
    try:
        if not os.path.isfile(os.path.join(saved_model, SAVED_MODEL_FILE)):
            return None
        with open(os.path.join(saved_model, "assets", INFO_ASSET), encoding="utf-8") as fh:
            checkpoint = json.load(fh).get("checkpoint")
    except (OSError, ValueError, AttributeError):
        return None
    return os.path.basename(checkpoint) if isinstance(checkpoint, str) else None


def train(cfg: Config, data: ImageData, run_dir: str, show_progress: bool = True,
          strategy: tf.distribute.Strategy | None = None, export: bool = True,
          allow_config_change: bool = False) -> list[dict[str, Any]]:
    """Train (or resume) ``run_dir`` to ``cfg.num_epochs``; returns every epoch's metrics row.

    With ``export``, the chief then writes ``run_dir/saved_model`` from the newest checkpoint
    unless the SavedModel there was exported from that very checkpoint (so an export that was
    killed, which leaves the previous one in place, is redone by the next run), and removes
    the temporary folders of exports whose process is gone. Raises what
    ``Trainer``/``Trainer.fit`` and ``export_run`` raise (ConfigError, RunLockedError,
    TrainingDivergedError, OSError, KeyboardInterrupt).
    """
    trainer = Trainer(cfg, data, run_dir, show_progress=show_progress, strategy=strategy,
                      allow_config_change=allow_config_change)
    rows = trainer.fit()
    saved_model = os.path.join(trainer.out_dir, SAVED_MODEL_DIR)
    if export and trainer.is_chief:
        latest = trainer.manager.latest_checkpoint
        if latest is None or exported_checkpoint(saved_model) != os.path.basename(latest):
            export_run(trainer.vae, trainer.prior, cfg, saved_model, checkpoint=latest)
        else:
            remove_stale_temp_dirs(os.path.dirname(os.path.abspath(saved_model)))
    return rows
