"""Experiment configuration: the authors' JSON key names, validated, with CLI overrides.

A config file written for the original TF1 code loads unchanged: its plumbing keys
(``data_path``, ``load_dir``, ...) are accepted with a one-line warning, and the
original prior spellings (``standard_gaussian``, ``GMM``, ``vampPrior``, ``ours``) are
aliases of the canonical names.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable

from ladder_tf.io_utils import atomic_write_text
from ladder_tf.prior_registry import PRIOR_ALIASES, PRIOR_NAMES

DATASETS = ("mnist_digit", "mnist_fashion", "celeba", "folder")  # and tfds:NAME (``is_tfds``)
LABELLED_DATASETS = ("mnist_digit", "mnist_fashion")  # with class labels: classifier-FID needs them
TFDS_PREFIX = "tfds:"
TFDS_NAME = re.compile(r"tfds:[a-z0-9_]+(/[A-Za-z0-9_.-]+)?(:[0-9.*]+)?")  # tfds:name[/config][:version]
IMAGE_SIZES = (8, 16, 32, 64, 128)  # resolutions of the image (CelebA-type) networks
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The shipped configs: package data after a (non-editable) install, configs/ in a checkout.
CONFIG_DIR = next((d for d in (os.path.join(_PACKAGE_DIR, "configs"),
                               os.path.join(os.path.dirname(_PACKAGE_DIR), "configs"))
                   if os.path.isdir(d)), os.path.join(_PACKAGE_DIR, "configs"))
# Keys of the original TF1 code's configs that configure nothing here (accepted, warned about).
LEGACY_KEYS = ("load_model", "load_dir", "data_path", "loss_function", "num_iter_to_plot", "kernel_size")
# Keys that change neither the model nor the data order of the steps already taken: the only
# ones a resumed run may change without --allow-config-change (ladder_tf.workflows.resume).
SAFE_ON_RESUME = ("num_epochs", "checkpoint_every_steps", "max_to_keep", "data_dir")
# Epoch numbers seed int32 random streams (test ELBO, figures) and num_epochs x steps per
# epoch must fit the int64 step counter: the largest num_epochs accepted.
MAX_EPOCHS = 2 ** 31 - 1


class ConfigError(ValueError):
    """A user mistake in a config file or override; the CLI prints it and exits 2."""


def is_tfds(name: str) -> bool:
    """True for a TensorFlow Datasets data set name, ``tfds:NAME``."""
    return bool(TFDS_NAME.fullmatch(name))


def image_dataset(name: str) -> bool:
    """True for the data sets read as image files (celeba, folder, tfds:NAME), which the
    CelebA-type networks (ladder_tf.model.networks.celeba) model at any size of IMAGE_SIZES."""
    return name in ("celeba", "folder") or is_tfds(name)


def config_path(name: str) -> str:
    """``name`` itself when it is a file, else the shipped config of that name
    (``mnist_digit_2d`` or ``mnist_digit_2d.json``: CONFIG_DIR/mnist_digit_2d.json)."""
    if os.path.isfile(name) or os.sep in name:
        return name
    shipped = os.path.join(CONFIG_DIR, name if name.endswith(".json") else f"{name}.json")
    return shipped if os.path.isfile(shipped) else name


def _choice(*allowed: Any):
    return {"choices": allowed}


def _range(lo: float | None = None, hi: float | None = None, lo_open: bool = False):
    return {"lo": lo, "hi": hi, "lo_open": lo_open}


@dataclass
class Config:
    """Every hyper-parameter of a run. Field names are the original code's JSON keys.

    Shapes/units: ``code_size`` is d_z (dimension of the data latent z);
    ``representation_size`` is d_t (dimension of the prior VAE's latent t);
    learning rates are Adam step sizes at epoch 1; ``sigma`` and ``inner_sigma`` are the
    initial Laplace scale of p(x|z) (pixel units, images in [0, 1]) and Gaussian scale of
    p(z|t).
    """

    exp_name: str = field(default="mnist_fashion", metadata=_choice(*DATASETS))  # or tfds:NAME
    prior: str = field(default="ladder", metadata=_choice(*PRIOR_NAMES))
    # data VAE
    code_size: int = field(default=16, metadata=_range(1))
    num_hidden_units: int = field(default=256, metadata=_range(16))
    latent_variance_precision: float = field(default=1e-3, metadata=_range(0.0))
    dim_input_x: int = field(default=28, metadata=_range(1))
    dim_input_y: int = field(default=28, metadata=_range(1))
    dim_input_channel: int = field(default=1, metadata=_choice(1, 3))
    activation: str = field(default="relu", metadata=_choice("relu", "leaky_relu"))
    mnist_network: str = field(default="paper", metadata=_choice("paper", "original_fashion", "large"))
    output_activation: str = field(default="sigmoid", metadata=_choice("sigmoid", "relu", "linear"))
    sigma: float = field(default=0.5, metadata=_range(0.0, lo_open=True))
    sigma_floor: bool = True
    # optimisation
    batch_size: int = field(default=256, metadata=_range(1))
    num_epochs: int = field(default=50, metadata=_range(1, MAX_EPOCHS))
    learning_rate_ae: float = field(default=5e-4, metadata=_range(0.0, lo_open=True))
    learning_rate_sigma: float = field(default=5e-4, metadata=_range(0.0, lo_open=True))
    learning_rate_prior: float = field(default=3e-4, metadata=_range(0.0, lo_open=True))
    learning_rate_inner_sigma: float = field(default=2e-4, metadata=_range(0.0, lo_open=True))
    lr_decay_ae: float = field(default=0.99, metadata=_range(0.0, lo_open=True))
    lr_decay_sigma: float = field(default=0.99, metadata=_range(0.0, lo_open=True))
    lr_growth_prior: float = field(default=1.01, metadata=_range(0.0, lo_open=True))
    adam_beta1: float = field(default=0.9, metadata=_range(0.0, 1.0))
    adam_beta2: float = field(default=0.95, metadata=_range(0.0, 1.0))
    grad_clip_value: float = field(default=1.0, metadata=_range(0.0))
    adam_epsilon: float = field(default=1e-8, metadata=_range(0.0, lo_open=True))
    block_update: str = field(default="sequential", metadata=_choice("sequential", "fused"))
    count_pretraining_prior_steps: bool = False
    pseudo_inputs_init: str = field(default="normal", metadata=_choice("normal", "data"))
    TRAIN_VAE: int = field(default=1, metadata=_choice(0, 1))
    TRAIN_sigma: int = field(default=1, metadata=_choice(0, 1))
    TRAIN_prior: int = field(default=1, metadata=_choice(0, 1))
    TRAIN_inner_sigma: int = field(default=1, metadata=_choice(0, 1))
    TRAIN_decoded_z_std: int = field(default=0, metadata=_choice(0))
    # priors
    sg_pretraining: int = field(default=10, metadata=_range(0))
    n_mixtures: int = field(default=50, metadata=_range(1))
    n_MC_samples: int = field(default=100, metadata=_range(1))
    GM_fit_restart: int = field(default=1, metadata=_range(1))
    accurate_fit: int = field(default=10, metadata=_range(1))
    use_mask_start: int = field(default=100, metadata=_range(0))
    weight_concentration_prior: float = field(default=0.1, metadata=_range(0.0, lo_open=True))
    fast_fit_samples: int = field(default=2000, metadata=_range(1))
    accurate_fit_samples: int = field(default=20000, metadata=_range(1))
    fast_fit_max_iter: int = field(default=1000, metadata=_range(1))
    accurate_fit_max_iter: int = field(default=2000, metadata=_range(1))
    gmm_covariance_jitter: float = field(default=0.01, metadata=_range(0.0))
    # prior VAE (ladder, hierarchical)
    representation_size: int = field(default=16, metadata=_range(1))
    num_hidden_units_inner_VAE: int = field(default=512, metadata=_range(1))
    n_layers_inner_VAE: int = field(default=5, metadata=_range(1))
    inner_activation: str = field(default="leaky_relu", metadata=_choice("tanh", "relu", "leaky_relu"))
    inner_sigma: float = field(default=0.1, metadata=_range(0.0, lo_open=True))
    inner_sigma_ub: float = field(default=0.1, metadata=_range(0.0, lo_open=True))
    inner_sigma_lb: float = field(default=0.05, metadata=_range(0.0, lo_open=True))
    # run plumbing
    seed: int = field(default=0, metadata=_range(0))
    checkpoint_every_steps: int = field(default=200, metadata=_range(1))
    max_to_keep: int = field(default=2, metadata=_range(1))
    test_batch_size: int = field(default=64, metadata=_range(10))
    steps_per_epoch: int = field(default=0, metadata=_range(0))
    train_size: int = field(default=0, metadata=_range(0))
    # where the data were read from: an absolute path, "" for the data set's default sources;
    # recorded at training so that evaluate, sample, interpolate and reproduce find them again
    data_dir: str = ""
    # image data sets (celeba, folder, tfds:NAME: ladder_tf.data.folder, the networks of
    # ladder_tf.model.networks.celeba; test_size and celeba_crop apply to all three) and
    # multi-device training
    test_size: int = field(default=20000, metadata=_range(1))
    celeba_crop: str = field(default="none", metadata=_choice("none", "center_square"))
    celeba_network: str = field(default="paper", metadata=_choice("paper", "original"))
    lr_schedule: str = field(default="exponential", metadata=_choice("exponential", "step_restart"))
    mixed_precision: str = field(default="off", metadata=_choice("off", "float16", "bfloat16"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return (self.dim_input_y, self.dim_input_x, self.dim_input_channel)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _check_value(key: str, value: Any) -> Any:
    f = _FIELDS[key]
    typ = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str,
                                                    "bool": bool}[f.type]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is bool and isinstance(value, int) and value in (0, 1):
        value = bool(value)
    if typ is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if key == "prior" and isinstance(value, str):
        value = PRIOR_ALIASES.get(value, value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ConfigError(f"config key '{key}' must be {typ.__name__}, got {value!r} "
                          f"({type(value).__name__})")
    if typ is float and not math.isfinite(value):
        raise ConfigError(f"config key '{key}' = {value!r} is not a finite number")
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"] and not (key == "exp_name" and is_tfds(value)):
        allowed = ", ".join(map(str, meta["choices"])) + (" or tfds:NAME" if key == "exp_name" else "")
        extra = (" (aliases: " + ", ".join(f"{a}->{c}" for a, c in PRIOR_ALIASES.items()) + ")"
                 if key == "prior" else "")
        raise ConfigError(f"config key '{key}' = {value!r} is not allowed; choose one of "
                          f"{allowed}{extra}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        op = ">" if meta.get("lo_open") else ">="
        raise ConfigError(f"config key '{key}' = {value!r} is out of range; it must be {op} {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"config key '{key}' = {value!r} is out of range; it must be <= {hi}")
    return value


def _unknown_key(key: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(_FIELDS), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def from_dict(values: dict[str, Any], base: Config | None = None) -> Config:
    """Validate ``values`` on top of ``base`` (defaults if None) and return a new Config."""
    merged = (base or Config()).to_dict()
    for key, value in values.items():
        if key in LEGACY_KEYS:
            warnings.warn(f"config key '{key}' belongs to the original TF1 code and is ignored",
                          stacklevel=2)
            continue
        if key not in _FIELDS:
            raise _unknown_key(key)
        merged[key] = _check_value(key, value)
    cfg = Config(**merged)
    if cfg.exp_name.startswith("mnist") and cfg.num_hidden_units % 64:
        raise ConfigError(f"num_hidden_units = {cfg.num_hidden_units} must be a multiple of 64 for "
                          "the MNIST networks (the decoder's depth_to_space needs h/16 divisible by 4)")
    if image_dataset(cfg.exp_name):
        _check_image_config(cfg)
    elif cfg.mixed_precision != "off":
        raise ConfigError("mixed_precision applies to the CelebA-type networks (celeba, folder, "
                          "tfds:NAME) only; set it to 'off'")
    if cfg.inner_sigma_lb > cfg.inner_sigma_ub:
        raise ConfigError(f"inner_sigma_lb ({cfg.inner_sigma_lb}) must not exceed "
                          f"inner_sigma_ub ({cfg.inner_sigma_ub})")
    return cfg


def _check_image_config(cfg: Config) -> None:
    """The rules of the image (CelebA-type) networks: ConfigError for a config they cannot take."""
    if cfg.num_hidden_units % 16:
        raise ConfigError(f"num_hidden_units = {cfg.num_hidden_units} must be a multiple of 16 for "
                          "the CelebA networks (the encoder's first conv has num_hidden_units/16 filters)")
    if cfg.exp_name == "celeba" and cfg.image_shape != (128, 128, 3):
        raise ConfigError(f"the CelebA networks take 128x128x3 images, but dim_input_y/x/channel "
                          f"give {cfg.image_shape}")
    if cfg.dim_input_x != cfg.dim_input_y or cfg.dim_input_x not in IMAGE_SIZES:
        raise ConfigError(f"the CelebA-type networks take square images of "
                          f"{', '.join(map(str, IMAGE_SIZES))} pixels a side, but dim_input_y/x give "
                          f"{cfg.dim_input_y}x{cfg.dim_input_x}")
    if cfg.celeba_network == "original" and cfg.dim_input_x != 128:
        raise ConfigError("celeba_network 'original' (the authors' code) takes 128x128 images only; "
                          "use 'paper' at other sizes")


def load(path: str | os.PathLike, overrides: Iterable[str] = (), **updates: Any) -> Config:
    """Read a JSON config, apply ``KEY=VALUE`` overrides then keyword updates, validate."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"config file {path} is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of key: value pairs")
    cfg = from_dict(raw)
    return apply_overrides(cfg, overrides, **updates)


def parse_override(text: str) -> tuple[str, Any]:
    """``'KEY=VALUE'`` -> (key, value); VALUE is read as JSON when it parses, else a string."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if key not in _FIELDS:
        raise _unknown_key(key)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def apply_overrides(cfg: Config, overrides: Iterable[str] = (), **updates: Any) -> Config:
    """Apply ``--set KEY=VALUE`` strings and keyword updates (None values are skipped)."""
    values = dict(parse_override(o) for o in overrides)
    values.update({k: v for k, v in updates.items() if v is not None})
    return from_dict(values, base=cfg)


def save(cfg: Config, path: str | os.PathLike) -> None:
    """Write the effective config as JSON, atomically."""
    atomic_write_text(path, json.dumps(cfg.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n")
