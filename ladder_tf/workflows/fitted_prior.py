"""A prior fitted to a user's own latents (``ladder_tf.fit_prior``): sample, log p(z), save, load.

:class:`FittedPrior` wraps one of the package's own density models, built from a config:

- ``"ladder"``: ``ladder_tf.model.priors.prior_vae.LadderPrior``, a prior VAE on z with a
  Dirichlet-process Gaussian mixture p(t); log p(z) = log int N(z; mu(t), s^2 I) p(t) dt has
  no closed form and is importance-sampled (``log_prob_is_estimate`` True);
- ``"gmm"``: ``ladder_tf.model.mixture.GaussianMixtureEM``, maximum-likelihood EM;
- ``"dp-gmm"``: ``ladder_tf.model.mixture.BayesianGaussianMixture``, a truncated
  Dirichlet-process mixture fitted by CAVI, used as the Gaussian mixture with the posterior
  mean weights, means and covariances (as LaDDer's p(t)).

For the two mixtures log p(z) is exact. ``save`` writes one ``.npz`` (no pickle): the
variables as arrays plus a JSON record of the kind, config and fit history; ``load``
rebuilds the model from that config and assigns them, so a loaded prior gives the same
``log_prob`` and, for a seed, the same ``sample`` as the one saved.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import tensorflow as tf

from ladder_tf import config as config_lib
from ladder_tf.config import Config
from ladder_tf.io_utils import atomic_path
from ladder_tf.model.mixture import BayesianGaussianMixture, GaussianMixtureEM
from ladder_tf.model.priors.base import seed_pair
from ladder_tf.model.priors.prior_vae import LadderPrior

KINDS = ("ladder", "gmm", "dp-gmm")
SCHEMA = "ladder_tf.fitted_prior/1"
META_KEY = "__meta__"
LOG_PROB_ROWS = 1000  # rows of z per importance-sampling call (bounds memory)
NOISE_STREAM = 1      # second seed word of a LaDDer sample's p(z|t) noise (t uses 0)


def build_density(kind: str, cfg: Config):
    """The unfitted model of ``kind`` for d = ``cfg.code_size`` latents, from ``cfg``."""
    d, k = cfg.code_size, cfg.n_mixtures
    if kind == "ladder":
        return LadderPrior(cfg)
    if kind == "gmm":
        return GaussianMixtureEM(k, d, max_iter=cfg.accurate_fit_max_iter, n_init=cfg.GM_fit_restart,
                                 seed=cfg.seed, name="gmm")
    if kind == "dp-gmm":
        return BayesianGaussianMixture(k, d, weight_concentration_prior_type="dirichlet_process",
                                       weight_concentration_prior=cfg.weight_concentration_prior,
                                       max_iter=cfg.accurate_fit_max_iter, n_init=cfg.GM_fit_restart,
                                       seed=cfg.seed, name="dp_gmm")
    raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")


def state_variables(kind: str, density) -> list[tf.Variable]:
    """Everything a fitted ``density`` is (what ``save`` writes), in a fixed order; for LaDDer
    its networks, inner sigma and both mixtures, not its optimisers."""
    if kind == "ladder":
        return [*density.encoder.variables, *density.decoder.variables, density.inner_sigma,
                density.has_accurate, *density.fast.variables, *density.accurate.variables]
    return list(density.variables)


def as_latents(z, dim: int | None = None, what: str = "latents") -> np.ndarray:
    """``z`` (numpy, tensor or nested lists) as a finite float32 (N, d) array; ValueError
    naming the problem otherwise (``dim``: the d it must have)."""
    arr = z.numpy() if tf.is_tensor(z) else np.asarray(z)
    if arr.ndim != 2 or (dim is not None and arr.shape[1] != dim):
        need = f"(N, {dim})" if dim is not None else "(N, d)"
        raise ValueError(f"{what} must have shape {need}; got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{what} must be real numbers; got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} hold NaN or inf in {int(np.sum(~np.isfinite(arr).all(1)))} rows")
    return arr.astype(np.float32)


class FittedPrior:
    """A density on d-dimensional latents fitted by ``fit_prior``.

    ``kind``: ladder, gmm or dp-gmm. ``config``: the settings it was built and fitted with
    (``code_size`` is d). ``log_prob_is_estimate``: True for ladder, whose ``log_prob`` is an
    importance-sampled estimate (the log of an unbiased estimate of p(z): below log p(z) on
    average, tightening as ``n_samples`` grows), False for the mixtures (exact). ``history``:
    per-epoch metrics of a LaDDer fit (the fit's summary for the mixtures). ``density``: the
    underlying model (a LadderPrior or a mixture tf.Module).
    """

    def __init__(self, kind: str, config: Config, density, history: list[dict[str, Any]] | None = None):
        self.kind, self.config, self.density = kind, config, density
        self.history = list(history or [])
        self._estimate = None

    @property
    def dim(self) -> int:
        return self.config.code_size

    @property
    def log_prob_is_estimate(self) -> bool:
        return self.kind == "ladder"

    def __repr__(self) -> str:
        return f"FittedPrior(kind={self.kind!r}, dim={self.dim})"

    def sample(self, n: int, seed: int = 0, noise: bool = True) -> np.ndarray:
        """n draws z ~ p(z), float32 (n, d); the same draws for the same ``seed``.

        ladder: t ~ p(t), then z ~ N(mu(t), s^2 I) with the inner sigma s; ``noise=False``
        gives mu(t) itself, the samples the package decodes into images (Prior.sample).
        """
        if self.kind != "ladder":
            return self.density.sample(int(n), seed=seed_pair(seed)).numpy()
        z = self.density.sample(int(n), seed)
        if noise:
            eps = tf.random.stateless_normal(tf.shape(z), tf.constant([seed, NOISE_STREAM], tf.int32))
            z = z + self.density.effective_inner_sigma() * eps
        return z.numpy()

    def log_prob(self, z, n_samples: int = 1000, seed: int = 0) -> np.ndarray:
        """log p(z) of each row, (N, d) -> float64 (N,).

        gmm, dp-gmm: exact (``n_samples`` and ``seed`` are not used). ladder: importance-sampled
        with ``n_samples`` draws t ~ q(t|z) per row (``ladder_tf.model.importance``), rows
        ``LOG_PROB_ROWS`` at a time, block i with seed ``seed + i`` (repeatable for a seed).
        """
        z = as_latents(z, self.dim, "z")
        if not self.log_prob_is_estimate:
            return self.density.log_prob(tf.constant(z)).numpy().astype(np.float64)
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be at least 1; got {n_samples}")
        if self._estimate is None:  # graph-compiled; the same numbers as the eager estimator
            self._estimate = tf.function(self.density.log_prob_estimate, reduce_retracing=True)
        out = [self._estimate(tf.constant(z[i:i + LOG_PROB_ROWS]), tf.constant(int(n_samples), tf.int32),
                              tf.constant(int(seed) + i // LOG_PROB_ROWS, tf.int32)).numpy()
               for i in range(0, len(z), LOG_PROB_ROWS)]
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def save(self, path: str | os.PathLike) -> str:
        """Write the fitted prior to ``path`` (one .npz, atomically, no pickle); returns ``path``."""
        variables = state_variables(self.kind, self.density)
        meta = {"schema": SCHEMA, "kind": self.kind, "config": self.config.to_dict(),
                "shapes": [list(v.shape) for v in variables], "history": self.history}
        arrays = {f"v{i:04d}": v.numpy() for i, v in enumerate(variables)}
        arrays[META_KEY] = np.array(json.dumps(meta, allow_nan=True))
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
        return os.fspath(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FittedPrior":
        """The prior ``save`` wrote to ``path``; ValueError when the file is not one."""
        try:
            with np.load(path, allow_pickle=False) as f:
                meta = json.loads(str(f[META_KEY]))
                arrays = [f[f"v{i:04d}"] for i in range(len(meta["shapes"]))]
        except (KeyError, ValueError, OSError) as err:
            if isinstance(err, FileNotFoundError):
                raise
            raise ValueError(f"{os.fspath(path)} is not a prior saved by FittedPrior.save ({err})") from None
        if meta.get("schema") != SCHEMA:
            raise ValueError(f"{os.fspath(path)}: unknown schema {meta.get('schema')!r} (expected {SCHEMA})")
        cfg = config_lib.from_dict(meta["config"])
        density = build_density(meta["kind"], cfg)
        variables = state_variables(meta["kind"], density)
        if [list(v.shape) for v in variables] != meta["shapes"]:
            raise ValueError(f"{os.fspath(path)} was saved by another version of ladder_tf: its "
                             "variables do not fit this version's model")
        for variable, value in zip(variables, arrays):
            variable.assign(value)
        return cls(meta["kind"], cfg, density, meta.get("history"))


def load_prior(path: str | os.PathLike) -> FittedPrior:
    """``FittedPrior.load(path)``: a prior written by ``FittedPrior.save``."""
    return FittedPrior.load(path)
