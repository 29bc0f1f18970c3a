"""Evaluation of trained models: FID (Table 1 of the paper) and importance-sampled log p(x).

Modules: ``fid`` (Fréchet distance, streaming statistics, the Table 1 protocol),
``features`` (InceptionV3 and classifier features), ``classifier`` (the project's own
feature CNN), ``nll`` (log p(x)), ``report`` (JSON / Markdown tables). The command line
is ``evaluate.py`` at the repository root.

Everything here takes a model through the small ``EvalModel`` protocol below, never a
run directory directly; ``load_model`` turns a path into one: a training run
(ladder_tf.workflows.runs.Run) or an exported SavedModel (ladder_tf.workflows.saved_model.SavedModelRun,
which has no ``vae``/``prior`` and so supports FID only). Another kind of model needs an
adapter class with these members and a branch in ``load_model``.
"""
from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class EvalModel(Protocol):
    """What evaluation needs of a model.

    ``name``: column name (the prior's name); ``config.exp_name``: its data set;
    ``reconstruct(x, seed=None)``: images (B, H, W, C) in [0, 1] -> decoded posterior
    means, or (``seed``: a stateless seed pair) decoded samples z ~ q(z|x), same shape; ``generate(n, seed)``: n images decoded from z ~ p(z). For log p(x) it also
    needs ``vae`` (encode, decode, sigma) and ``prior`` (log_prob or log_prob_estimate);
    adapters without them are reported as unsupported for that metric.
    """

    name: str
    config: Any

    def reconstruct(self, x, seed=None): ...

    def generate(self, n: int, seed: int): ...


class ModelLoadError(RuntimeError):
    """A path that exists but cannot be restored into a model (the message says why)."""


def load_model(path: str) -> EvalModel:
    """A model from ``path``: a SavedModel export (saved_model.pb) or a training run
    directory (config.json + checkpoints/).

    Raises ladder_tf.workflows.runs.RunNotFoundError for a path that is not a run directory and
    ModelLoadError when its checkpoint cannot be restored.
    """
    import tensorflow as tf

    from ladder_tf.io_utils import error_line
    from ladder_tf.workflows.runs import RunNotFoundError, load_run

    if not os.path.isdir(path):
        raise RunNotFoundError(f"{path}: no such run directory")
    try:
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            from ladder_tf.workflows.saved_model import load_saved_model

            return load_saved_model(path)
        return load_run(path)
    except RunNotFoundError:
        raise
    except (ValueError, KeyError, AssertionError, OSError, tf.errors.OpError) as err:
        raise ModelLoadError(f"{path}: cannot load the model ({error_line(err)})") from err


__all__ = ["EvalModel", "ModelLoadError", "load_model"]
