"""Input pipelines: in-memory uint8 images to float32 batches in [0, 1] via tf.data."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ladder_tf.data.mnist import DataNotFoundError, ImageData, load_mnist

__all__ = ["DataNotFoundError", "ImageData", "load_dataset", "train_batches", "eval_batches",
           "balanced_test_batch", "to_float"]


def load_dataset(name: str, data_dir: str | None = None, allow_download: bool = True,
                 train_size: int = 0) -> ImageData:
    """Load a data set by config ``exp_name``; ``train_size`` > 0 keeps the first N train images."""
    if name.startswith("mnist"):
        data = load_mnist(name, data_dir, allow_download)
    else:
        raise ValueError(f"dataset {name!r} has no loader in this version; "
                         "use mnist_digit or mnist_fashion")
    if train_size:
        data.x_train, data.y_train = data.x_train[:train_size], data.y_train[:train_size]
    return data


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 images -> float32 in [0, 1]."""
    return tf.cast(images, tf.float32) / 255.0


def train_batches(images: np.ndarray, batch_size: int, seed: int, epoch: int,
                  skip_batches: int = 0) -> tf.data.Dataset:
    """One epoch of shuffled float batches; the order depends only on (seed, epoch).

    ``drop_remainder`` batching keeps every batch the same shape (no retracing);
    ``skip_batches`` resumes an epoch that was interrupted after that many steps.
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(images))
    n_batches = len(images) // batch_size
    order = order[skip_batches * batch_size: n_batches * batch_size]
    ds = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True)
    source = tf.constant(images)
    ds = ds.map(lambda idx: to_float(tf.gather(source, idx)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_batches(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """All of ``images`` in order, float batches (the last one may be smaller)."""
    ds = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    return ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def balanced_test_batch(images: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, class-balanced batch: the first occurrences of each class in order.

    Generalises the original's hard-coded counts (for 256: 26 of classes 0-5, 25 of 6-9):
    ``size // n_classes`` of each class plus one more for the first ``size % n_classes``.
    Returns float32 images in [0, 1] and their labels, grouped by class.
    """
    classes = np.unique(labels)
    base, extra = divmod(size, len(classes))
    picks = []
    for rank, c in enumerate(classes):
        count = base + (1 if rank < extra else 0)
        picks.append(np.flatnonzero(labels == c)[:count])
    idx = np.concatenate(picks)
    return images[idx].astype(np.float32) / 255.0, labels[idx]
