"""Prior registry: ``build_prior(cfg, vae)`` -> a Prior for ``cfg.prior``.

Each prior family lives in its own module and is imported only when used. A prior's
constructor takes (cfg, vae); ``vae`` gives priors that need them (VampPrior) access to the
data encoder.
"""
from __future__ import annotations

import importlib

from ladder_tf.config import Config
from ladder_tf.model.priors.base import Prior

REGISTRY = {
    "normal": ("ladder_tf.model.priors.normal", "NormalPrior"),
    "gmm": ("ladder_tf.model.priors.gmm", "GMMPrior"),
    "vampprior": ("ladder_tf.model.priors.vamp", "VampPrior"),
    "hierarchical": ("ladder_tf.model.priors.prior_vae", "HierarchicalPrior"),
    "ladder": ("ladder_tf.model.priors.prior_vae", "LadderPrior"),
}


def build_prior(cfg: Config, vae) -> Prior:
    """Instantiate the prior named by ``cfg.prior`` (canonical name)."""
    module_name, class_name = REGISTRY[cfg.prior]
    return getattr(importlib.import_module(module_name), class_name)(cfg, vae)
