"""Input pipelines: images to float32 batches in [0, 1] via tf.data.

Images are either in-memory uint8 arrays (MNIST, (N, H, W, C)) or lazily decoded image
collections (``ladder_tf.data.image_files.ImageFiles``: image folders, CelebA, TFDS image
sets, read from the files or an on-disk cache, too large for memory);
``ladder_tf.data.images`` gives both one interface. ``train_batches``,
``eval_batches`` and ``balanced_test_batch`` accept both, so the trainer does not care which
it has.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import tensorflow as tf

from ladder_tf.config import TFDS_PREFIX
from ladder_tf.data.images import ImageCollection, as_images, to_float
from ladder_tf.data.mnist import DataNotFoundError, ImageData, load_mnist

__all__ = ["DataNotFoundError", "ImageData", "ImageCollection", "as_images", "load_dataset",
           "run_data_dir", "load_run_data",
           "train_batches", "eval_batches", "balanced_test_batch", "to_float", "epoch_order",
           "warn_skipped_files"]
SKIPPED_SHOWN = 5


def load_dataset(name: str, data_dir: str | None = None, allow_download: bool = True,
                 train_size: int = 0, **image_options: Any) -> ImageData:
    """Load a data set by config ``exp_name``; ``train_size`` > 0 keeps the first N train images.

    ``name``: mnist_digit, mnist_fashion (ladder_tf.data.mnist; ``image_options`` ignored),
    celeba (ladder_tf.data.celeba), folder (an image folder, ``data_dir`` required) or
    tfds:NAME (a prepared TFDS image set; ``data_dir``: the TFDS data directory), the last
    three from ladder_tf.data.folder. ``image_options`` go to their loaders: cfg (size, crop,
    channels, test_size), cache_dir, and test_size / crop to override the config's.
    """
    if name.startswith("mnist"):
        data = load_mnist(name, data_dir, allow_download)
    elif name == "celeba":
        from ladder_tf.data.celeba import load_celeba
        data = load_celeba(data_dir, **image_options)
    elif name == "folder":
        from ladder_tf.data.folder import load_image_folder
        data = load_image_folder(data_dir, **image_options)
    elif name.startswith(TFDS_PREFIX):
        from ladder_tf.data.folder import load_tfds_images
        data = load_tfds_images(name[len(TFDS_PREFIX):], data_dir, **image_options)
    else:
        raise ValueError(f"dataset {name!r} has no loader; use mnist_digit, mnist_fashion, celeba, "
                         "folder or tfds:NAME")
    if train_size:
        data.x_train, data.y_train = data.x_train[:train_size], data.y_train[:train_size]
    return data


def run_data_dir(cfg, data_dir: str | None = None) -> str | None:
    """Where a run's data are: ``data_dir`` (an explicit --data-dir) when given, else the
    directory recorded in its config (``cfg.data_dir``), else None (the data set's default
    sources). Raises DataNotFoundError, naming it, when the recorded directory is gone."""
    if data_dir:
        return data_dir
    if cfg.data_dir and not os.path.exists(cfg.data_dir):
        raise DataNotFoundError(f"the data directory {cfg.data_dir} recorded in the run's config.json "
                                "(data_dir) no longer exists; pass --data-dir with where the data are now")
    return cfg.data_dir or None


def load_run_data(cfg, data_dir: str | None = None, allow_download: bool = True,
                  cache_dir: str | None = None, train_size: int = 0) -> ImageData:
    """The data set of a run's config ``cfg`` (its exp_name, image size, crop, channels and test
    split), read from ``run_data_dir(cfg, data_dir)``; ``cache_dir``: image data sets' cache;
    ``train_size`` > 0 keeps the first N training images."""
    return load_dataset(cfg.exp_name, run_data_dir(cfg, data_dir), allow_download=allow_download,
                        train_size=train_size, cfg=cfg, cache_dir=cache_dir)


def epoch_order(n: int, batch_size: int, seed: int, epoch: int, skip_batches: int = 0,
                replicas: int = 1, pipeline: int = 0, pipelines: int = 1) -> np.ndarray:
    """Image indices of one epoch, one row per element of the input pipeline.

    The global order is a permutation of ``range(n)`` that depends only on (seed, epoch),
    cut into ``n // batch_size`` global batches, of which the first ``skip_batches`` are
    dropped. With ``replicas`` > 1 every global batch is split into per-replica batches of
    ``batch_size // replicas`` (replica r: rows r*b .. r*b + b - 1), and ``pipeline`` of
    ``pipelines`` keeps the shares of its replicas (consecutive ids), in replica order.
    Returns (rows, batch_size // replicas) int64.
    """
    order = np.random.default_rng([seed, epoch]).permutation(n)
    n_batches = n // batch_size
    order = order[skip_batches * batch_size: n_batches * batch_size].reshape(-1, batch_size)
    per_replica, local = batch_size // replicas, replicas // pipelines
    order = order[:, pipeline * local * per_replica: (pipeline + 1) * local * per_replica]
    return order.reshape(-1, per_replica).astype(np.int64)


def train_batches(images: Any, batch_size: int, seed: int, epoch: int, skip_batches: int = 0,
                  replicas: int = 1, pipeline: int = 0, pipelines: int = 1) -> tf.data.Dataset:
    """One epoch of shuffled float batches; the order depends only on (seed, epoch).

    ``drop_remainder`` batching keeps every batch the same shape (no retracing);
    ``skip_batches`` resumes an epoch that was interrupted after that many steps; the
    replica arguments split each global batch for a distribution strategy (``epoch_order``).
    ``images``: a uint8 array or an ``ImageFiles`` collection.
    """
    order = epoch_order(len(images), batch_size, seed, epoch, skip_batches, replicas, pipeline,
                        pipelines)
    return as_images(images).train_dataset(order)


def eval_batches(images: Any, batch_size: int) -> tf.data.Dataset:
    """All of ``images`` in order, float batches (the last one may be smaller)."""
    return as_images(images).batches(batch_size)


def balanced_test_batch(images: Any, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
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
    return as_images(images)[idx].floats(), labels[idx]


def warn_skipped_files(data: ImageData, epoch: int) -> list[str]:
    """One warning naming how many unreadable files were skipped since the last call.

    Only lazily loaded data sets skip files (``pop_skipped``); returns the skipped paths.
    """
    skipped = as_images(data.x_train).pop_skipped()
    if skipped:
        shown = ", ".join(skipped[:SKIPPED_SHOWN]) + (", ..." if len(skipped) > SKIPPED_SHOWN else "")
        warnings.warn(f"epoch {epoch}: skipped {len(skipped)} unreadable or non-image "
                      f"file{'s' if len(skipped) > 1 else ''}: {shown}", stacklevel=2)
    return skipped
