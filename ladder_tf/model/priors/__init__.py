"""``build_prior(cfg, vae)`` -> a Prior for ``cfg.prior``, from the one list of priors
(ladder_tf.prior_registry).

Each prior family lives in its own module and is imported only when used. A prior's
constructor takes (cfg, vae); ``vae`` gives priors that need them (VampPrior) access to the
data encoder.
"""
from __future__ import annotations

import importlib

from ladder_tf.config import Config
from ladder_tf.model.priors.base import Prior
from ladder_tf.prior_registry import prior_entry


def build_prior(cfg: Config, vae) -> Prior:
    """Instantiate the prior named by ``cfg.prior`` (canonical name)."""
    entry = prior_entry(cfg.prior)
    module = importlib.import_module(f"{__name__}.{entry.module}")
    return getattr(module, entry.class_name)(cfg, vae)
