"""The one list of priors (ladder_tf.prior_registry): every user of a prior list reads it."""
import importlib

import pytest

from ladder_tf import config as config_lib
from ladder_tf.commands import reproduce as reproduce_cmd
from ladder_tf.prior_registry import PRIOR_ALIASES, PRIOR_NAMES, PRIOR_VAE_PRIORS, PRIORS, prior_entry
from ladder_tf.workflows.build import build_model
from ladder_tf.workflows.reproduce import ALL_PRIORS


def test_every_list_is_the_registry_in_its_order():
    assert PRIOR_NAMES == ("normal", "vampprior", "gmm", "hierarchical", "ladder")
    assert config_lib.PRIOR_NAMES is PRIOR_NAMES and config_lib.PRIOR_ALIASES is PRIOR_ALIASES
    assert ALL_PRIORS == PRIOR_NAMES  # reproduce's Table 1 columns
    choices = next(f for f in config_lib.dataclasses.fields(config_lib.Config) if f.name == "prior")
    assert choices.metadata["choices"] == PRIOR_NAMES
    assert PRIOR_ALIASES == {"standard_gaussian": "normal", "vampPrior": "vampprior", "GMM": "gmm",
                             "ours": "ladder"}
    help_text = reproduce_cmd.build_parser().format_help()
    assert ",".join(PRIOR_NAMES) in help_text.replace("\n", "").replace(" ", "")


@pytest.mark.parametrize("entry", PRIORS, ids=[p.name for p in PRIORS])
def test_entries_name_the_class_that_implements_them(entry):
    cls = getattr(importlib.import_module(f"ladder_tf.model.priors.{entry.module}"), entry.class_name)
    assert cls.has_t_space == entry.prior_vae == (entry.name in PRIOR_VAE_PRIORS)
    cfg = config_lib.from_dict({"prior": entry.original or entry.name, "code_size": 2,
                                "representation_size": 2, "n_layers_inner_VAE": 1,
                                "num_hidden_units_inner_VAE": 8, "n_mixtures": 2, "num_hidden_units": 64})
    assert cfg.prior == entry.name
    _, prior = build_model(cfg)  # through build_prior
    assert type(prior) is cls
    assert prior_entry(entry.name) is entry
    if entry.original:
        assert prior_entry(entry.original) is entry


def test_unknown_prior():
    with pytest.raises(KeyError):
        prior_entry("flow")
