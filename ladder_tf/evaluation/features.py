"""Feature extractors for FID, and streaming their statistics batch by batch.

An extractor maps float images (B, H, W, C) in [0, 1] to features (B, dim) float64:

- ``InceptionFeatures``: Keras InceptionV3 with ImageNet weights, average-pooled 2048-d
  features. Protocol ``paper`` is the authors' utility (clip to [0, 1], grey repeated to
  3 channels, scaled to [-1, 1], bilinear resize to 64x64 then 140x140, input 140x140),
  resized on TensorFlow 1's grid as their ``tf.image.resize_images`` did (output pixel i
  reads input coordinate i * in / out, no half-pixel centres: ``tf1_resize_bilinear``);
  ``standard`` resizes straight to 299x299 (TensorFlow 2's bilinear, half-pixel centres). Weights come from a file: never
  from a download (this code must work offline) and never random outside tests.
- ``ClassifierFeatures``: the penultimate layer (128-d) of the project's own classifier
  (ladder_tf.evaluation.classifier): offline "classifier-FID", on its own scale.

Images are resized inside the extractor one batch at a time, so at most one batch ever
exists at 299x299x3; ``accumulate_stats`` keeps only float64 sums (d,) and (d, d).
"""
from __future__ import annotations

import hashlib
import os
from typing import Iterable, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tqdm.auto import tqdm

from ladder_tf.data.images import to_float
from ladder_tf.evaluation.fid_inception import tf1_resize_bilinear
from ladder_tf.evaluation.frechet import GaussianStats, StreamingStats

NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
TOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
KNOWN_MD5 = {NOTOP_FILE: "bcbd6486424b2319ff4ef7d526e38f63", TOP_FILE: "9a0d58056eeedaa3f26cb7ebd46da564"}
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
PROTOCOL_SIZES = {"paper": (64, 140), "standard": (299,)}
# Part of the cache fingerprint: statistics made with an earlier preprocessing of a protocol
# are not reused (paper: TF2's half-pixel resize until the TF1 grid, "tf1grid").
PROTOCOL_VERSIONS = {"paper": "tf1grid-", "standard": ""}


class WeightsNotFoundError(FileNotFoundError):
    """No InceptionV3 ImageNet weights file is available (the message says how to add one)."""


class FeatureExtractor(Protocol):
    """What FID needs of a feature network."""

    name: str          # short id, e.g. "inception-paper", "classifier"
    label: str         # how results are labelled, e.g. "classifier-FID (...)"
    dim: int
    batch_size: int
    fingerprint: str   # identifies weights + preprocessing (for caching reference stats)

    def __call__(self, images: tf.Tensor | np.ndarray) -> np.ndarray:
        """(B, H, W, C) float in [0, 1] -> (B, dim) float64."""


def _md5(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def keras_cache_dirs() -> list[str]:
    """Where Keras keeps downloaded weights: $KERAS_HOME/models, ~/.keras/models, /tmp/.keras/models."""
    dirs = [os.path.join(os.environ["KERAS_HOME"], "models")] if os.environ.get("KERAS_HOME") else []
    return dirs + [os.path.join(os.path.expanduser("~"), ".keras", "models"),
                   os.path.join("/tmp", ".keras", "models")]


def how_to_provide_weights() -> str:
    return (f"On a machine with internet, download {WEIGHTS_URL}{NOTOP_FILE} and pass "
            "--inception-weights PATH (or copy it into ~/.keras/models/); or use the standard FID "
            "network (`ladder fid-weights`, then --features fid-inception); "
            "or use --features classifier for an offline classifier-FID (its numbers are not "
            "comparable with the paper's Inception FID)")


def missing_weights_message(looked_in: list[str]) -> str:
    return (f"Inception FID needs Keras's InceptionV3 ImageNet weights and none were found (looked "
            f"for {NOTOP_FILE} in {', '.join(looked_in)}). " + how_to_provide_weights())


def find_inception_weights(path: str | None = None) -> str:
    """The weights file to use: ``path`` if given, else the first one in Keras's cache.

    Checking the cache ourselves matters: ``InceptionV3(weights='imagenet')`` would try
    a download, which can hang on a machine without network.
    """
    if path:
        if not os.path.isfile(path):
            raise WeightsNotFoundError(f"--inception-weights {path}: no such file. "
                                       + how_to_provide_weights())
        return path
    dirs = keras_cache_dirs()
    for d in dirs:
        for fname in (NOTOP_FILE, TOP_FILE):
            if os.path.isfile(os.path.join(d, fname)):
                return os.path.join(d, fname)
    raise WeightsNotFoundError(missing_weights_message(dirs))


def _has_top(path: str) -> bool:
    import h5py

    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs.get("layer_names", [])]
    return "predictions" in names


def build_inception(weights_path: str, input_size: int) -> keras.Model:
    """InceptionV3 without its top, average pooled (2048-d), at ``input_size``^2 x 3.

    Accepts either Keras file: the no-top one loads directly; the full one is loaded into
    the 299x299 classifier and its convolution weights copied over (they do not depend on
    the input size).
    """
    app = keras.applications.InceptionV3
    model = app(include_top=False, weights=None, input_shape=(input_size, input_size, 3), pooling="avg")
    if _has_top(weights_path):
        full = app(include_top=True, weights=None)
        full.load_weights(weights_path)
        values = full.get_weights()[:len(model.weights)]
        if [v.shape for v in values] != [tuple(w.shape) for w in model.weights]:
            raise ValueError(f"{weights_path} does not match InceptionV3's layers")
        model.set_weights(values)
    else:
        model.load_weights(weights_path)
    return model


class InceptionFeatures:
    """Pooled InceptionV3 features (2048-d) under the ``paper`` or ``standard`` protocol.

    ``model`` may be injected (tests use random weights); the CLI always loads a file.
    """

    dim = 2048

    def __init__(self, weights_path: str | None = None, protocol: str = "paper",
                 batch_size: int = 100, model: keras.Model | None = None):
        if protocol not in PROTOCOL_SIZES:
            raise ValueError(f"unknown FID protocol {protocol!r}; use paper or standard")
        self.protocol, self.sizes, self.batch_size = protocol, PROTOCOL_SIZES[protocol], batch_size
        if model is None:
            if weights_path is None:
                raise WeightsNotFoundError(missing_weights_message(keras_cache_dirs()))
            model = build_inception(weights_path, self.sizes[-1])
        self.model = model
        self.weights_md5 = _md5(weights_path) if weights_path else "injected"
        self.weights_path = weights_path
        self.name = f"inception-{protocol}"
        self.label = (f"Inception FID with Keras's ImageNet InceptionV3 ({protocol} protocol: input "
                      f"{self.sizes[-1]}x{self.sizes[-1]}; not the network of published FIDs)")
        self.fingerprint = f"{self.name}-{PROTOCOL_VERSIONS[protocol]}{self.weights_md5}"
        self._features = tf.function(self._features_impl, reduce_retracing=True)

    @property
    def weights_are_official(self) -> bool:
        """True when the file's md5 is the one Keras publishes."""
        return self.weights_md5 in KNOWN_MD5.values()

    def preprocess(self, images: tf.Tensor) -> tf.Tensor:
        """(B, H, W, C) in [0, 1] (generated ones possibly outside) -> (B, S, S, 3) in [-1, 1]."""
        x = tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0)
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        x = 2.0 * x - 1.0
        for size in self.sizes:
            x = (tf1_resize_bilinear(x, size) if self.protocol == "paper"
                 else tf.image.resize(x, (size, size), method="bilinear"))
        return x

    def _features_impl(self, images: tf.Tensor) -> tf.Tensor:
        return self.model(self.preprocess(images), training=False)

    def __call__(self, images) -> np.ndarray:
        return self._features(tf.convert_to_tensor(images, tf.float32)).numpy().astype(np.float64)


class ClassifierFeatures:
    """Penultimate-layer features (128-d) of the project's data-set classifier."""

    def __init__(self, classifier, dataset: str, batch_size: int = 500):
        self.classifier, self.batch_size = classifier, batch_size
        self.dim = int(classifier.features.output_shape[-1])
        acc = classifier.info.get("test_accuracy", float("nan"))
        self.name = "classifier"
        self.label = (f"classifier-FID ({self.dim}-d penultimate features of a CNN trained on {dataset}, "
                      f"test accuracy {acc:.4f}; NOT comparable with the paper's Inception FID)")
        h = hashlib.sha1()
        for w in classifier.features.get_weights():
            h.update(np.ascontiguousarray(w).tobytes())
        self.fingerprint = f"classifier-{dataset}-{h.hexdigest()[:16]}"
        self._features = tf.function(self._features_impl, reduce_retracing=True)

    def _features_impl(self, images: tf.Tensor) -> tf.Tensor:
        return self.classifier.features(tf.clip_by_value(images, 0.0, 1.0), training=False)

    def __call__(self, images) -> np.ndarray:
        return self._features(tf.convert_to_tensor(images, tf.float32)).numpy().astype(np.float64)


def accumulate_stats(extractor: FeatureExtractor, batches: Iterable, total: int | None = None,
                     desc: str = "features", progress: bool = True) -> GaussianStats:
    """Mean and covariance of the features of every image in ``batches``.

    ``batches`` yields images (B, H, W, C), floats in [0, 1] or uint8 (scaled by ``to_float``),
    e.g. an image collection's ``float_batches`` (ladder_tf.data.images); only one batch and
    the (d, d) float64 sums are held at a time. ``total`` (images) sizes the bar.
    """
    stats = StreamingStats(extractor.dim)
    with tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False,
              mininterval=0.5, dynamic_ncols=True) as bar:
        for x in batches:
            x = to_float(x)
            stats.update(extractor(x))
            bar.update(int(x.shape[0]))
    return stats.finalize()
