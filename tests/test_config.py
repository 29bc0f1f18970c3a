"""Config loading: original key names, aliases, legacy keys, clear errors, CLI exit codes."""
import dataclasses
import json
import subprocess
import sys

import pytest

from ladder_tf import config as config_lib
from ladder_tf.config import ConfigError

ORIGINAL_FASHION = {  # the original's codes/mnist_fashion_config.json (docs/original.md, section 1)
    "exp_name": "mnist_fashion", "prior": "ours", "loss_function": "ELBO",
    "inner_activation": "leaky_relu", "n_mixtures": 50, "GM_fit_restart": 1, "n_MC_samples": 100,
    "num_epochs": 30, "sg_pretraining": 10, "use_mask_start": 50, "accurate_fit": 10,
    "num_iter_to_plot": 2, "kernel_size": 3, "learning_rate_ae": 3e-4, "learning_rate_sigma": 5e-4,
    "learning_rate_prior": 3e-4, "learning_rate_inner_sigma": 2e-4, "batch_size": 256,
    "dim_input_x": 28, "dim_input_y": 28, "dim_input_channel": 1, "code_size": 16,
    "representation_size": 2, "TRAIN_VAE": 1, "TRAIN_sigma": 1, "TRAIN_prior": 1,
    "TRAIN_inner_sigma": 1, "TRAIN_decoded_z_std": 0, "sigma": 0.5, "inner_sigma": 0.1,
    "inner_sigma_ub": 0.1, "inner_sigma_lb": 0.05, "latent_variance_precision": 1e-3,
    "num_hidden_units": 256, "num_hidden_units_inner_VAE": 512, "n_layers_inner_VAE": 5,
    "load_model": 0, "load_dir": "", "max_to_keep": 1, "data_path": "/data/fashion",
}


def write(tmp_path, values):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(values))
    return path


def test_original_config_loads_with_warnings_and_aliases(tmp_path):
    with pytest.warns(UserWarning, match="data_path"):
        cfg = config_lib.load(write(tmp_path, ORIGINAL_FASHION))
    assert cfg.prior == "ladder" and cfg.code_size == 16 and cfg.representation_size == 2
    assert cfg.learning_rate_ae == 3e-4 and cfg.sigma_floor is True
    assert cfg.max_to_keep == 1  # a key of both the original and this package: applied


def test_legacy_keys_are_not_config_keys():
    """A legacy key is ignored with a warning; one that is also a Config field is applied."""
    assert not set(config_lib.LEGACY_KEYS) & {f.name for f in dataclasses.fields(config_lib.Config)}


@pytest.mark.parametrize("alias,canonical", [("standard_gaussian", "normal"), ("GMM", "gmm"),
                                             ("vampPrior", "vampprior"), ("ours", "ladder"),
                                             ("hierarchical", "hierarchical")])
def test_prior_aliases(alias, canonical):
    assert config_lib.from_dict({"prior": alias}).prior == canonical


def test_shipped_configs_follow_the_supplementary():
    for name, d_t in (("mnist_digit", 8), ("mnist_fashion", 16), ("mnist_digit_2d", 2)):
        cfg = config_lib.load(f"configs/{name}.json")
        assert (cfg.batch_size, cfg.code_size, cfg.num_epochs, cfg.learning_rate_ae) == (256, 16, 50, 5e-4)
        assert cfg.representation_size == d_t


def test_quality_config_changes_only_what_its_docs_declare():
    """configs/quality/mnist_fashion.json (beyond the paper) is the paper config with d_z 32 and
    100 epochs, nothing else: the README and docs/results.md describe it so."""
    paper = dataclasses.asdict(config_lib.load("configs/mnist_fashion.json"))
    quality = dataclasses.asdict(config_lib.load("configs/quality/mnist_fashion.json"))
    changed = {k: (paper[k], quality[k]) for k in paper if paper[k] != quality[k]}
    assert changed == {"code_size": (16, 32), "num_epochs": (50, 100)}


def test_unknown_key_names_closest():
    with pytest.raises(ConfigError, match="unknown config key 'code_sise'.*'code_size'"):
        config_lib.from_dict({"code_sise": 3})


@pytest.mark.parametrize("values,pattern", [
    ({"batch_size": 0}, "'batch_size' = 0 is out of range; it must be >= 1"),
    ({"batch_size": "big"}, "'batch_size' must be int, got 'big'"),
    ({"prior": "flow"}, "'prior' = 'flow' is not allowed; choose one of normal"),
    ({"sigma": 0}, "'sigma' = 0.0 is out of range; it must be > 0"),
    ({"inner_sigma_lb": 0.2}, "inner_sigma_lb .* must not exceed"),
])
def test_bad_values_name_key_value_and_allowed(values, pattern):
    with pytest.raises(ConfigError, match=pattern):
        config_lib.from_dict(values)


def test_overrides_parse_json_values():
    cfg = config_lib.apply_overrides(config_lib.Config(), ["code_size=4", "prior=GMM",
                                                           "learning_rate_ae=1e-3"])
    assert (cfg.code_size, cfg.prior, cfg.learning_rate_ae) == (4, "gmm", 1e-3)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        config_lib.apply_overrides(config_lib.Config(), ["code_size"])


def test_save_roundtrip(tmp_path):
    cfg = config_lib.from_dict({"code_size": 5, "prior": "gmm"})
    config_lib.save(cfg, tmp_path / "config.json")
    assert config_lib.load(tmp_path / "config.json") == cfg


@pytest.mark.parametrize("args,pattern", [
    (["--set", "batch_sise=3"], "unknown config key 'batch_sise'; did you mean 'batch_size'"),
    (["--prior", "flow"], "'prior' = 'flow' is not allowed"),
    (["--config", "missing.json"], "config file not found"),
    (["--epochs", "0"], "'num_epochs' = 0 is out of range"),
])
def test_cli_mistakes_exit_2_with_one_message(args, pattern):
    proc = subprocess.run([sys.executable, "train_mnist.py", *args, "--no-download"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert __import__("re").search(pattern, proc.stderr), proc.stderr
