"""Image collections: one interface for in-memory arrays and lazily read files, and the one
uint8 -> float conversion.

A data set's images are either a uint8 array (N, H, W, C) in memory (MNIST) or an
``ImageFiles`` collection read from files as needed (CelebA, ladder_tf.data.celeba). Both
are :class:`ImageCollection` s (``as_images`` wraps an array in an :class:`ImageArray`):

- ``len(images)``; ``images[index]`` with a slice or an index array: the same kind of
  collection, nothing read yet; ``images[i]`` with an int: that one image as an array;
- ``float_batches(b)``: float32 batches (at most b, H, W, C) in [0, 1], in order, as numpy;
  ``floats()``: all of them in one array;
- ``batches(b)`` and ``train_dataset(order)``: the same as tf.data pipelines (evaluation
  passes and training epochs, ladder_tf.data.eval_batches / train_batches);
- ``in_memory``: True for arrays (large evaluation batches are cheap), False for files;
  ``pop_skipped()``: the unreadable files skipped since the last call;
- ``content_id()``: a short hash that changes when the images do (FID statistics caches are
  keyed by it), computed without decoding any file.

``to_float`` is the only uint8 -> float conversion: v / 255 in float32, for numpy arrays
and tf.Tensors alike (so pipelines and in-memory batches agree bit for bit).
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Any, Iterator

import numpy as np
import tensorflow as tf

FLOAT_BATCH = 256  # images converted at a time by ``floats``
# Whether input pipelines run tf.data's autotuning model (``finish_pipeline``); a switch for
# benchmarks/input_pipeline.py, which measures both.
AUTOTUNE_MODEL = False


def finish_pipeline(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` prefetched, with tf.data's autotuning model off (unless ``AUTOTUNE_MODEL``).

    The model's optimisation thread sleeps for a period that grows to tens of seconds, and
    (TensorFlow 2.21) an iterator cannot be destroyed before that sleep ends: with it on,
    every epoch's end stalled for up to a minute, the cores idle (about 57 s of an 85-145 s
    Fashion-MNIST epoch; docs/results.md, input pipeline). Without it, parallel maps use
    min(16, cores) threads and ``prefetch(2)`` keeps the next batches ready. The elements and
    their order are the same either way.
    """
    ds = ds.prefetch(2)
    if AUTOTUNE_MODEL:
        return ds
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def to_float(images: Any) -> Any:
    """uint8 pixel values v -> float32 v / 255 in [0, 1]; float images -> float32, unchanged.

    numpy in, numpy out; a tf.Tensor in (graph-safe, e.g. in a tf.data map), a tf.Tensor out.
    """
    if tf.is_tensor(images):
        x = tf.cast(images, tf.float32)
        return x / 255.0 if images.dtype == tf.uint8 else x
    a = np.asarray(images)
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


class ImageCollection(ABC):
    """What every consumer of a data set's images uses (see the module docstring)."""

    in_memory: bool = False

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, key: Any) -> "ImageCollection | np.ndarray": ...

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]: ...

    @abstractmethod
    def float_batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """float32 batches in [0, 1] of at most ``batch_size`` images, in order."""

    @abstractmethod
    def batches(self, batch_size: int) -> tf.data.Dataset:
        """Every image in order as float batches (the last one may be smaller)."""

    @abstractmethod
    def train_dataset(self, order: np.ndarray) -> tf.data.Dataset:
        """Float batches, one per row of ``order`` (positions in this collection), in order."""

    def pop_skipped(self) -> list[str]:
        """Paths of unreadable files skipped since the last call (none for arrays)."""
        return []

    @abstractmethod
    def content_id(self) -> str:
        """10 hex digits naming these images (what they are, not where they are held)."""

    def floats(self) -> np.ndarray:
        """All images as float32 (n, H, W, C) in [0, 1]."""
        parts = list(self.float_batches(FLOAT_BATCH))
        return np.concatenate(parts) if parts else np.zeros((0,) + tuple(self.shape[1:]), np.float32)


class ImageArray(ImageCollection):
    """Images held in memory: a uint8 (or [0, 1] float) array (N, H, W, C)."""

    in_memory = True

    def __init__(self, array: np.ndarray):
        self.array = np.asarray(array)

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, key: Any) -> "ImageArray | np.ndarray":
        if isinstance(key, (int, np.integer)):
            return self.array[key]
        return ImageArray(self.array[key])

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    def content_id(self) -> str:
        """sha1 of the array's bytes, in C order."""
        return hashlib.sha1(np.ascontiguousarray(self.array).tobytes()).hexdigest()[:10]

    def float_batches(self, batch_size: int) -> Iterator[np.ndarray]:
        for i in range(0, len(self.array), batch_size):
            yield to_float(self.array[i:i + batch_size])

    def batches(self, batch_size: int) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(self.array).batch(batch_size)
        return finish_pipeline(ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE))

    def train_dataset(self, order: np.ndarray) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(order)
        source = tf.constant(self.array)
        ds = ds.map(lambda idx: to_float(tf.gather(source, idx)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return finish_pipeline(ds)


def as_images(images: Any) -> ImageCollection:
    """``images`` as an ImageCollection: collections as they are, arrays wrapped (not copied)."""
    return images if isinstance(images, ImageCollection) else ImageArray(images)
