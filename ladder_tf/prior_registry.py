"""The priors on z this package trains, listed once.

Everything that needs the list takes it from here: the config's allowed ``prior`` values and
the original code's spellings (ladder_tf.config), the class that implements each
(ladder_tf.model.priors.build_prior) and the columns of ``ladder reproduce`` and their order
(ladder_tf.workflows.reproduce). The order is Table 1's column order: the baselines, then
LaDDer.

This module imports nothing, so the commands can check prior names before TensorFlow starts.
"""
from __future__ import annotations

from typing import NamedTuple


class PriorEntry(NamedTuple):
    """One prior: its canonical ``name``, where it is implemented (``module`` under
    ladder_tf.model.priors, ``class_name``), the original TF1 code's spelling (``original``,
    None where the original had none) and whether it is a prior VAE on z (``prior_vae``: it
    has a latent t, whose dimension d_t is the config's ``representation_size``)."""

    name: str
    module: str
    class_name: str
    original: str | None
    prior_vae: bool


PRIORS: tuple[PriorEntry, ...] = (
    PriorEntry("normal", "normal", "NormalPrior", "standard_gaussian", False),
    PriorEntry("vampprior", "vamp", "VampPrior", "vampPrior", False),
    PriorEntry("gmm", "gmm", "GMMPrior", "GMM", False),
    PriorEntry("hierarchical", "prior_vae", "HierarchicalPrior", None, True),
    PriorEntry("ladder", "prior_vae", "LadderPrior", "ours", True),
)
PRIOR_NAMES: tuple[str, ...] = tuple(p.name for p in PRIORS)
PRIOR_ALIASES: dict[str, str] = {p.original: p.name for p in PRIORS if p.original}
PRIOR_VAE_PRIORS: tuple[str, ...] = tuple(p.name for p in PRIORS if p.prior_vae)


def prior_entry(name: str) -> PriorEntry:
    """The entry of prior ``name`` (canonical or the original's spelling); KeyError if none."""
    name = PRIOR_ALIASES.get(name, name)
    for p in PRIORS:
        if p.name == name:
            return p
    raise KeyError(name)
