"""A trained model, whatever holds it: the one surface evaluation, interpolation and sampling use.

Two kinds implement :class:`TrainedModel`:

- :class:`InProcessModel`: a data VAE and its prior in this process (a run directory restored
  by ladder_tf.workflows.runs is one);
- an exported SavedModel (ladder_tf.workflows.saved_model.SavedModelRun), whose functions are
  the export's signatures.

``ladder_tf.workflows.trained.load_model(path)`` opens either. What a model offers beyond
encoding, decoding and sampling is declared by its prior (``ladder_tf.model.priors.base.Prior``)
and repeated here as three flags, so callers ask instead of calling and catching:

- ``has_density``: log p(z) can be evaluated, exactly (``log_prob_z``) or, when
  ``density_is_estimate``, only as an importance-sampled estimate (``log_prob_z_estimate``);
- ``has_t_space``: a latent t under z (the prior-VAE priors): ``encode_t``, ``decode_t``,
  ``log_prob_t``.

Images are float32 (B, H, W, C) in [0, 1]; z is (B, d_z), t (B, d_t); outputs are tf.Tensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import tensorflow as tf

from ladder_tf.config import Config
from ladder_tf.model.priors.base import Prior
from ladder_tf.model.vae import VAE


@runtime_checkable
class TrainedModel(Protocol):
    """What evaluation, interpolation and sampling need of a trained model.

    ``name``: the prior's name (a results column); ``config``: the effective config
    (``exp_name`` names its data set). ``sigma``: the Laplace likelihood's scale parameter
    (its absolute value is the scale), None where the model does not expose it (a SavedModel),
    which rules out log p(x). A function the capability flags rule out raises
    NotImplementedError.
    """

    name: str
    config: Config
    has_density: bool
    density_is_estimate: bool
    has_t_space: bool
    sigma: Any

    def encode(self, x) -> tuple[tf.Tensor, tf.Tensor]:
        """Images -> mean, std of q(z|x), each (B, d_z)."""

    def decode(self, z) -> tf.Tensor:
        """z (B, d_z) -> the decoder's mean images."""

    def reconstruct(self, x, seed=None) -> tf.Tensor:
        """Images -> decoded posterior means (``seed`` None) or decoded z ~ q(z|x) drawn with the
        stateless seed pair ``seed``, same shape."""

    def sample(self, n: int, seed: int) -> dict[str, tf.Tensor]:
        """{images (n, H, W, C), z (n, d_z)}: z ~ p(z) drawn with the seed pair [seed, 0]."""

    def generate(self, n: int, seed: int) -> tf.Tensor:
        """The images of ``sample(n, seed)``."""

    def log_prob_z(self, z) -> tf.Tensor:
        """Exact log p(z), (..., d_z) -> (...)."""

    def log_prob_z_estimate(self, z, n_samples: int, seed: int) -> tf.Tensor:
        """Importance-sampled log p(z) with ``n_samples`` draws, (N, d_z) -> (N,)."""

    def encode_t(self, z) -> tuple[tf.Tensor, tf.Tensor]:
        """z (B, d_z) -> mean, std of q(t|z), each (B, d_t)."""

    def decode_t(self, t) -> tf.Tensor:
        """t (B, d_t) -> mean of p(z|t), (B, d_z)."""

    def log_prob_t(self, t) -> tf.Tensor:
        """log p(t) of the hyper prior, (..., d_t) -> (...)."""


def has_exact_density(model: TrainedModel | Prior) -> bool:
    """True when ``model`` (a TrainedModel or a Prior) evaluates log p(z) exactly."""
    return model.has_density and not model.density_is_estimate


def _declared(flag: str) -> property:
    """A read-only property: the prior's declared capability ``flag``."""
    return property(lambda self: getattr(self.prior, flag), doc=f"The prior's ``{flag}``.")


@dataclass
class InProcessModel:
    """A data VAE and its prior in this process, as a :class:`TrainedModel`."""

    config: Config
    vae: VAE
    prior: Prior

    has_density = _declared("has_density")
    density_is_estimate = _declared("density_is_estimate")
    has_t_space = _declared("has_t_space")

    @property
    def name(self) -> str:
        return self.config.prior

    @property
    def sigma(self) -> tf.Variable:
        return self.vae.sigma

    def encode(self, x) -> tuple[tf.Tensor, tf.Tensor]:
        return self.vae.encode(x)

    def decode(self, z) -> tf.Tensor:
        return self.vae.decode(z)

    def reconstruct(self, x, seed=None) -> tf.Tensor:
        return self.vae.reconstruct(x, None if seed is None else tf.constant(seed, tf.int32))

    def sample(self, n: int, seed: int) -> dict[str, tf.Tensor]:
        z = self.prior.sample(n, seed)
        return {"images": self.vae.decode(z), "z": z}

    def generate(self, n: int, seed: int) -> tf.Tensor:
        return self.sample(n, seed)["images"]

    def log_prob_z(self, z) -> tf.Tensor:
        return self.prior.log_prob(z)

    def log_prob_z_estimate(self, z, n_samples: int, seed: int) -> tf.Tensor:
        return self.prior.log_prob_estimate(z, n_samples, seed)

    def _t_prior(self) -> Prior:
        if not self.has_t_space:
            raise NotImplementedError(f"the {self.name} prior has no latent t under z")
        return self.prior

    def encode_t(self, z) -> tuple[tf.Tensor, tf.Tensor]:
        return self._t_prior().encode(z)

    def decode_t(self, t) -> tf.Tensor:
        return self._t_prior().decode(t)

    def log_prob_t(self, t) -> tf.Tensor:
        return self._t_prior().log_prob_t(t)
