"""Which settings each run of ``ladder reproduce`` gets: the base config and per-prior keys.

The base config (``--config``):

- ``paper`` (the default): ``configs/<dataset>.json``, the paper text's settings. Runs go to
  ``<out-root>/<dataset>/`` as they always have.
- ``original``: ``configs/original/<dataset>.json``, the authors' code's settings; any
  other folder of ``configs/`` is a config set in the same way.
- the name of another shipped config (``mnist_digit_2d``) or the path of a JSON file.

Every base config but the default has its own root, ``<out-root>/<dataset>-<name>/`` (name:
``original``, the shipped config's name or the file's name without ``.json``), holding its
runs and its results.md/json, so two settings never share a run directory or a table. A file
that is one of the shipped configs counts as that config. (The FID caches under
``<out-root>/_classifiers`` and ``<out-root>/_fid_stats`` are shared: their keys name the
data, the network and the run directory with its checkpoint, so nothing one config computed
is read for another, and both tables are measured with the same FID classifier.)

Per-prior keys (``--set-prior PRIOR:KEY=VALUE``) change one prior's runs only, e.g.
``hierarchical:representation_size=2``. A run whose config differs from the base config in
more than its prior and seed goes to a folder that says how: ``<prior>-<key>=<value>/``
(keys sorted, joined by ``-``), so it never resumes or reuses a run of other settings.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, NamedTuple, Sequence

from ladder_tf import config as config_lib
from ladder_tf.config import CONFIG_DIR, Config, ConfigError
from ladder_tf.prior_registry import prior_entry

DEFAULT_CONFIG = "paper"
# Keys a run's place in the comparison sets; --set-prior cannot change them.
RUN_KEYS = ("prior", "seed", "exp_name")


class ConfigChoice(NamedTuple):
    """The base config's file and its name (``label`` None for the default, ``paper``)."""

    path: str
    label: str | None

    @property
    def name(self) -> str:
        return self.label or DEFAULT_CONFIG

    @property
    def shown(self) -> str:
        """The file as the results name it: ``configs/...`` for a shipped one, else as given."""
        shipped = os.path.abspath(CONFIG_DIR)
        path = os.path.abspath(self.path)
        if os.path.commonpath([shipped, path]) == shipped:
            return os.path.join("configs", os.path.relpath(path, shipped))
        return self.path


def _same_file(a: str, b: str) -> bool:
    return os.path.isfile(a) and os.path.isfile(b) and os.path.samefile(a, b)


def config_sets() -> list[str]:
    """Names of the shipped config sets: the folders of ``configs/`` (``original``, ...)."""
    return sorted(n for n in os.listdir(CONFIG_DIR) if os.path.isdir(os.path.join(CONFIG_DIR, n)))


def resolve_config(choice: str | None, dataset: str) -> ConfigChoice:
    """``--config`` -> (file, name). Raises ConfigError for a name that is no config, and for a
    file whose ``exp_name`` is another data set than ``dataset``.

    A config set (a folder of ``configs/``, e.g. ``original``) names its ``<dataset>.json``,
    and a file inside a set counts as that set, so both spellings share one root.
    """
    paper = config_lib.config_path(dataset)
    if choice in (None, DEFAULT_CONFIG):
        return ConfigChoice(paper, None)
    if choice in config_sets():
        path = os.path.join(CONFIG_DIR, choice, f"{dataset}.json")
        if not os.path.isfile(path):
            raise ConfigError(f"--config {choice}: there is no {path}")
        return ConfigChoice(path, choice)
    path = config_lib.config_path(choice)
    if not os.path.isfile(path):
        sets = ", ".join(f"{name} (configs/{name}/<dataset>.json)" for name in config_sets())
        raise ConfigError(f"--config {choice}: no such file and no shipped config of that name; give "
                          f"{DEFAULT_CONFIG} (configs/<dataset>.json, the default), {sets}, "
                          "a shipped config's name or a JSON file")
    if _same_file(path, paper):
        return ConfigChoice(paper, None)
    for name in config_sets():
        if _same_file(path, os.path.join(CONFIG_DIR, name, f"{dataset}.json")):
            return ConfigChoice(os.path.join(CONFIG_DIR, name, f"{dataset}.json"), name)
    _check_dataset(path, dataset)
    name = os.path.basename(path)
    name = name[:-len(".json")] if name.endswith(".json") else name
    return ConfigChoice(path, re.sub(r"[^A-Za-z0-9_.+-]", "_", name) or "config")


def _check_dataset(path: str, dataset: str) -> None:
    """A config file naming another data set (its ``exp_name``) than ``dataset`` is a mistake."""
    try:
        with open(path, encoding="utf-8") as fh:
            named = json.load(fh).get("exp_name")
    except (OSError, ValueError, AttributeError):
        return  # config_lib.load reports an unreadable file in its own words
    if named is not None and named != dataset:
        raise ConfigError(f"--config {path} is a config for {named} (its exp_name), not {dataset}; "
                          f"give --dataset {named}")


def experiment_root(out_root: str, exp_name: str, label: str | None) -> str:
    """Where one base config's runs and results live: ``<out-root>/<dataset>[-<name>]``."""
    return os.path.join(out_root, exp_name if label is None else f"{exp_name}-{label}")


def parse_prior_override(text: str) -> tuple[str, str, Any]:
    """``'hierarchical:representation_size=2'`` -> ('hierarchical', 'representation_size', 2).

    The prior may be the original's spelling; the value is read as ``--set`` reads it.
    Raises ConfigError naming what was wrong.
    """
    prior, sep, setting = text.partition(":")
    if not sep or "=" not in setting:
        raise ConfigError(f"--set-prior expects PRIOR:KEY=VALUE, got {text!r}")
    try:
        prior = prior_entry(prior.strip()).name
    except KeyError:
        raise ConfigError(f"--set-prior {text!r}: unknown prior {prior.strip()!r}; choose from "
                          f"{','.join(config_lib.PRIOR_NAMES)}") from None
    key, value = config_lib.parse_override(setting)
    if key in RUN_KEYS:
        raise ConfigError(f"--set-prior cannot set {key} (the runner sets {', '.join(RUN_KEYS)}); "
                          "use --priors, --seeds or --dataset")
    return prior, key, value


def per_prior_settings(texts: Sequence[str], priors: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{prior: {key: value}} of the ``--set-prior`` texts; every prior they name must be run
    (``priors``) and no prior key may be given twice. Raises ConfigError."""
    out: dict[str, dict[str, Any]] = {}
    for text in texts:
        prior, key, value = parse_prior_override(text)
        if prior not in priors:
            raise ConfigError(f"--set-prior {text!r}: {prior} is not among the priors run "
                              f"({', '.join(priors) or 'none'})")
        if key in out.setdefault(prior, {}):
            raise ConfigError(f"--set-prior sets {prior}:{key} twice")
        out[prior][key] = value
    return out


def differences(cfg: Config, base: Config, ignore: Sequence[str] = RUN_KEYS) -> dict[str, Any]:
    """{key: value in ``cfg``} for every key in which ``cfg`` differs from ``base``, sorted,
    leaving out ``ignore`` (by default the keys the runner sets for every run)."""
    a, b = cfg.to_dict(), base.to_dict()
    return {k: a[k] for k in sorted(a) if k not in ignore and a[k] != b[k]}


def folder_name(stem: str, changed: dict[str, Any]) -> str:
    """``stem`` alone, or ``stem-<key>=<value>-...`` for the keys in ``changed`` (file-safe)."""
    parts = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(changed.items())]
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "-".join([stem, *parts]))


def format_settings(changed: dict[str, Any]) -> str:
    """'key=value, key=value' ('-' for none): a results cell."""
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "-"


def column_settings(specs: Sequence[Any], base: Config) -> dict[str, dict[str, Any]]:
    """Per column of ``specs`` (RunSpecs): its prior's d_t (``representation_size``) when the
    prior is a prior VAE (else None) and every key its runs set otherwise than ``base``."""
    out: dict[str, dict[str, Any]] = {}
    for s in specs:
        entry = out.setdefault(s.column, {"prior": s.cfg.prior, "d_t": None, "differs": {}})
        if prior_entry(s.cfg.prior).prior_vae:
            entry["d_t"] = s.cfg.representation_size
        entry["differs"].update(differences(s.cfg, base))
    return out
