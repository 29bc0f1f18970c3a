"""The one door to a trained model: ``load_model(path)`` opens a run directory or a SavedModel.

Both come back as a ``ladder_tf.model.trained.TrainedModel``: a training run
(config.json + checkpoints/, ladder_tf.workflows.runs.Run) or an export (saved_model.pb,
ladder_tf.workflows.saved_model.SavedModelRun). Evaluation, interpolation and sampling use
nothing else of either.
"""
from __future__ import annotations

import os

import tensorflow as tf

from ladder_tf.io_utils import error_line
from ladder_tf.model.trained import TrainedModel
from ladder_tf.workflows.runs import RunNotFoundError, load_run
from ladder_tf.workflows.saved_model import is_saved_model, load_saved_model


class ModelLoadError(RuntimeError):
    """A path that exists but cannot be restored into a model (the message says why)."""


def load_model(path: str) -> TrainedModel:
    """A model from ``path``: a SavedModel export (saved_model.pb) or a training run
    directory (config.json + checkpoints/).

    Raises RunNotFoundError for a path that is not a run directory and ModelLoadError when
    what it holds cannot be restored.
    """
    if not os.path.isdir(path):
        raise RunNotFoundError(f"{path}: no such run directory")
    try:
        return load_saved_model(path) if is_saved_model(path) else load_run(path)
    except RunNotFoundError:
        raise
    except (ValueError, KeyError, AssertionError, OSError, tf.errors.OpError) as err:
        raise ModelLoadError(f"{path}: cannot load the model ({error_line(err)})") from err


__all__ = ["ModelLoadError", "RunNotFoundError", "TrainedModel", "load_model"]
