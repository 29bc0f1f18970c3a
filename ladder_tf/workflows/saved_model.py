"""Use an exported SavedModel (ladder_tf.workflows.export) where a training run is expected.

``load_saved_model(path)`` returns a :class:`SavedModelRun`, a
``ladder_tf.model.trained.TrainedModel`` like a restored run: ``name``, ``config`` (read from
the ``assets/config.json`` asset), encoders, decoders, samples and the exported log-densities.
Everything runs through the SavedModel's signatures, so results equal those of the exported
functions bit for bit. Its capabilities are the signatures it has (``log_prob_z``: exact;
``log_prob_z_estimate``: importance-sampled, the prior-VAE priors); it exposes no likelihood
scale (``sigma`` None), so log p(x) is not available from an export.
"""
from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from ladder_tf import config as config_lib
from ladder_tf.config import Config
from ladder_tf.export_format import CONFIG_ASSET, INFO_ASSET, SAVED_MODEL_FILE
from ladder_tf.model.elbo import reparameterise


def is_saved_model(path: str) -> bool:
    """True when ``path`` is a SavedModel directory (holds saved_model.pb)."""
    return os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))


class SavedModelRun:
    """A loaded export. Images are float32 (B, H, W, C) in [0, 1]; outputs are tf.Tensors."""

    sigma = None

    def __init__(self, path: str, loaded, config: Config, info: dict):
        self.path, self.loaded, self.config, self.info = path, loaded, config, info
        self._signatures = loaded.signatures

    @property
    def name(self) -> str:
        return self.config.prior

    @property
    def signature_names(self) -> list[str]:
        return sorted(self._signatures.keys())

    @property
    def has_t_space(self) -> bool:
        """True for the prior-VAE priors (encode_t, decode_t and log_prob_t exist)."""
        return "encode_t" in self._signatures

    @property
    def has_density(self) -> bool:
        """True when log p(z) can be evaluated: exactly (log_prob_z) or as an estimate."""
        return "log_prob_z" in self._signatures or self.density_is_estimate

    @property
    def density_is_estimate(self) -> bool:
        """True when log p(z) is only an importance-sampled estimate (log_prob_z_estimate)."""
        return "log_prob_z_estimate" in self._signatures and "log_prob_z" not in self._signatures

    def _call(self, name: str, **inputs) -> dict[str, tf.Tensor]:
        if name not in self._signatures:
            raise NotImplementedError(f"the {self.name} SavedModel at {self.path} has no '{name}' "
                                      f"signature (it has {', '.join(self.signature_names)})")
        return self._signatures[name](**inputs)

    @staticmethod
    def _float(x) -> tf.Tensor:
        return tf.convert_to_tensor(np.asarray(x, np.float32) if not tf.is_tensor(x) else x, tf.float32)

    def reconstruct(self, x, seed=None) -> tf.Tensor:
        """Images (B, H, W, C) -> decoded posterior means (``seed`` None), or decoded
        z ~ q(z|x) drawn with the stateless ``seed`` (2,) as ``Run.reconstruct`` does."""
        if seed is None:
            return self._call("reconstruct", images=self._float(x))["images"]
        mean, std = self.encode(x)
        return self.decode(reparameterise(mean, std, tf.constant(seed, tf.int32)))

    def generate(self, n: int, seed: int) -> tf.Tensor:
        """n images decoded from z ~ p(z); the same draws as ``Run.generate(n, seed)``."""
        return self.sample(n, seed)["images"]

    def sample(self, n: int, seed: int) -> dict[str, tf.Tensor]:
        """{images (n, H, W, C), z (n, d_z)} from the trained prior."""
        return self._call("sample", n=tf.constant(int(n), tf.int32), seed=tf.constant(int(seed), tf.int32))

    def encode(self, x) -> tuple[tf.Tensor, tf.Tensor]:
        """Images -> mean, std of q(z|x), each (B, d_z)."""
        out = self._call("encode", images=self._float(x))
        return out["mean"], out["std"]

    def decode(self, z) -> tf.Tensor:
        """z (B, d_z) -> mean images."""
        return self._call("decode", z=self._float(z))["images"]

    def encode_t(self, z) -> tuple[tf.Tensor, tf.Tensor]:
        """z (B, d_z) -> mean, std of q(t|z), each (B, d_t) (prior-VAE priors)."""
        out = self._call("encode_t", z=self._float(z))
        return out["mean"], out["std"]

    def decode_t(self, t) -> tf.Tensor:
        """t (B, d_t) -> mean of p(z|t), (B, d_z) (prior-VAE priors)."""
        return self._call("decode_t", t=self._float(t))["z"]

    def _log_prob(self, signature: str, argument: str, points, output: str = "log_prob",
                  **extra) -> tf.Tensor:
        """A log-density signature over rows (its input ``argument``), on points (..., d) -> (...)."""
        points = self._float(points)
        flat = tf.reshape(points, [-1, points.shape[-1]])
        return tf.reshape(self._call(signature, **{argument: flat}, **extra)[output], tf.shape(points)[:-1])

    def log_prob_t(self, t) -> tf.Tensor:
        """log p(t) of the hyper prior, (..., d_t) -> (...) (prior-VAE priors)."""
        return self._log_prob("log_prob_t", "t", t)

    def log_prob_z(self, z) -> tf.Tensor:
        """log p(z), (..., d_z) -> (...) (priors with a tractable density)."""
        return self._log_prob("log_prob_z", "z", z)

    def log_prob_z_estimate(self, z, n_samples: int, seed: int) -> tf.Tensor:
        """Importance-sampled log p(z) with ``n_samples`` draws, (..., d_z) -> (...) (prior-VAE
        priors); the numbers of ``Prior.log_prob_estimate(z, n_samples, seed)``."""
        return self._log_prob("log_prob_z_estimate", "z", z, "log_prob_estimate",
                              n_samples=tf.constant(int(n_samples), tf.int32),
                              seed=tf.constant(int(seed), tf.int32))


def load_saved_model(path: str) -> SavedModelRun:
    """Load an export of ``ladder_tf.workflows.export``; raises FileNotFoundError if ``path`` is not one."""
    if not is_saved_model(path):
        raise FileNotFoundError(f"{path} is not a SavedModel directory: it has no {SAVED_MODEL_FILE}")
    config_path = os.path.join(path, "assets", CONFIG_ASSET)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{path} is a SavedModel but not a ladder_tf export: it has no "
                                f"assets/{CONFIG_ASSET}")
    info_path = os.path.join(path, "assets", INFO_ASSET)
    info = {}
    if os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as fh:
            info = json.load(fh)
    return SavedModelRun(path, tf.saved_model.load(path), config_lib.load(config_path), info)
