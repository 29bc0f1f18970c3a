"""ladder_tf: LaDDer (Lin & Clark, BMVC 2020) and its baseline priors in TensorFlow 2 / Keras.

The commands are ``ladder train | train-celeba | evaluate | reproduce | export | interpolate |
sample`` (``ladder_tf.commands``). The Python API::

    from ladder_tf import load_model, fit_prior, load_prior

- ``load_model(path)``: a trained model (a run directory or a SavedModel export), the object
  every command uses (ladder_tf.workflows.trained);
- ``fit_prior(latents, kind="ladder" | "gmm" | "dp-gmm")``: a prior fitted to your own
  latents, with ``sample``, ``log_prob``, ``save`` (ladder_tf.workflows.fit_prior);
- ``load_prior(path)``: a prior ``fit_prior`` saved (ladder_tf.workflows.fitted_prior).

Importing the package starts nothing: these names import their modules (and TensorFlow) on
first use.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> "module:attribute", imported on first access (module __getattr__, PEP 562)
API = {
    "load_model": "ladder_tf.workflows.trained:load_model",
    "fit_prior": "ladder_tf.workflows.fit_prior:fit_prior",
    "load_prior": "ladder_tf.workflows.fitted_prior:load_prior",
    "FittedPrior": "ladder_tf.workflows.fitted_prior:FittedPrior",
    "TrainedModel": "ladder_tf.model.trained:TrainedModel",
}
__all__ = ["__version__", *API]


def __getattr__(name: str) -> Any:
    if name not in API:
        raise AttributeError(f"module 'ladder_tf' has no attribute {name!r}")
    module, attribute = API[name].split(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API))
