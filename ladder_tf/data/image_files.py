"""Images read from files as needed: ``ImageFiles``, a lazily loaded image collection over an
``ImageStore`` (paths, preprocessing, an optional cache), and the preprocessing itself.

Used by the image-folder and TFDS image data sets (ladder_tf.data.folder) and CelebA
(ladder_tf.data.celeba); an ``ImageFiles`` is an ImageCollection (ladder_tf.data.images).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import tensorflow as tf

from ladder_tf.data.images import ImageCollection, finish_pipeline, to_float


def preprocess(contents: tf.Tensor, size: int, crop: str = "none", channels: int = 3) -> tf.Tensor:
    """Encoded image bytes -> uint8 (size, size, channels): decode (grey or RGB as asked; an
    alpha channel is dropped), optional centre square, resize."""
    image = tf.io.decode_image(contents, channels=channels, expand_animations=False)
    return resize_image(image, size, crop, channels)


def match_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """uint8 (H, W, C), C in {1, 3, 4} -> (H, W, channels): grey repeated to RGB, RGB to grey
    (TensorFlow's luma weights), alpha dropped."""
    c = image.shape[-1]
    if c == 4:
        image, c = image[..., :3], 3
    if c == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(image)
    if c == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(image)
    return image


def resize_image(image: tf.Tensor, size: int, crop: str = "none", channels: int = 3) -> tf.Tensor:
    """uint8 (H, W, C) -> uint8 (size, size, channels), optionally centre-cropped to a square
    first; bilinear with antialiasing, rounded."""
    image = match_channels(image, channels)
    image.set_shape([None, None, channels])
    if crop == "center_square":
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(h, w)
        image = tf.image.crop_to_bounding_box(image, (h - side) // 2, (w - side) // 2, side, side)
    resized = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


@dataclass
class ImageStore:
    """All readable images of a source: paths, preprocessing, optional cache, skip log."""

    paths: np.ndarray                      # (N,) str, row i of the cache is paths[i]
    size: int
    crop: str = "none"
    cache: np.ndarray | None = None        # uint8 (N, size, size, channels) memory map
    bad_rows: np.ndarray | None = None     # (N,) bool: decoding failed when the cache was built
    scan_skipped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    channels: int = 3

    def record(self, rows: np.ndarray) -> None:
        self.skipped.extend(str(p) for p in self.paths[np.asarray(rows, np.int64)])

    def pop_skipped(self) -> list[str]:
        runtime = list(dict.fromkeys(self.skipped))
        self.skipped.clear()
        return self.scan_skipped + runtime


def _file_stamp(path: str) -> str:
    """``path:size:mtime_ns``, or the bare path for a source that is not a file (TFDS rows)."""
    try:
        st = os.stat(path)
    except OSError:
        return path
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


class ImageFiles(ImageCollection):
    """A lazily loaded (n, size, size, channels) image collection: a subset of an ``ImageStore``.

    An ImageCollection (ladder_tf.data.images): ``len``, indexing by slice or index array (a
    new collection, nothing read), float batches and the tf.data pipelines used by
    ``ladder_tf.data.train_batches`` / ``eval_batches``.
    """

    def __init__(self, store: ImageStore, rows: np.ndarray):
        self.store, self.rows = store, np.asarray(rows, np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), self.store.size, self.store.size, self.store.channels)

    def __getitem__(self, key: Any) -> "ImageFiles | np.ndarray":
        if isinstance(key, (int, np.integer)):
            return self[[key]].floats()[0]
        return ImageFiles(self.store, self.rows[key])

    def pop_skipped(self) -> list[str]:
        """Paths skipped since the last call (the folder scan's are repeated every time)."""
        return self.store.pop_skipped()

    def content_id(self) -> str:
        """sha1 of the preprocessing (size, crop) and, per row in order, the file's path, size
        and modification time: nothing is decoded, so naming 20,000 test images costs one
        ``stat`` each, and an image replaced under the same name changes the id."""
        files = "\n".join(_file_stamp(str(p)) for p in self.store.paths[self.rows])
        extra = f"|{self.store.channels}" if self.store.channels != 3 else ""  # (ids of RGB sets unchanged)
        key = f"{self.store.size}|{self.store.crop}{extra}|{files}"
        return hashlib.sha1(key.encode()).hexdigest()[:10]

    # -- pipelines ----------------------------------------------------------------------
    def train_dataset(self, order: np.ndarray) -> tf.data.Dataset:
        """Float batches, one per row of ``order`` (positions in this collection), in order.

        Unreadable images are replaced by the next ones of the stream (wrapping to the start
        of ``order``), so the number and size of batches never change.
        """
        rows = self.rows[order.reshape(-1)]
        return self._pipeline(np.concatenate([rows, rows]), len(rows), order.shape[1], True)

    def batches(self, batch_size: int) -> tf.data.Dataset:
        """Every readable image in order, float batches (the last one may be smaller)."""
        return self._pipeline(self.rows, None, batch_size, False)

    def float_batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """``batches`` as numpy; fewer images than ``len`` when files are unreadable."""
        return self.batches(batch_size).as_numpy_iterator()

    def _pipeline(self, stream: np.ndarray, needed: int | None, batch_size: int,
                  drop_remainder: bool) -> tf.data.Dataset:
        store = self.store
        if store.cache is not None:
            ds = self._cached(stream, needed, batch_size, drop_remainder)
        else:
            ds = self._decoded(stream, needed, batch_size, drop_remainder)
        return finish_pipeline(ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE))

    def _cached(self, stream, needed, batch_size, drop_remainder) -> tf.data.Dataset:
        store = self.store
        good = ~store.bad_rows[stream]
        positions = np.flatnonzero(good)[:needed]
        last = positions[-1] + 1 if len(positions) else 0
        store.record(stream[:last][~good[:last]])
        rows = stream[positions]
        cache, shape = store.cache, (None, store.size, store.size, store.channels)

        def read(idx: tf.Tensor) -> tf.Tensor:
            images = tf.numpy_function(lambda i: cache[i], [idx], tf.uint8, stateful=False)
            images.set_shape(shape)
            return images

        ds = tf.data.Dataset.from_tensor_slices(rows).batch(batch_size, drop_remainder=drop_remainder)
        return ds.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def _decoded(self, stream, needed, batch_size, drop_remainder) -> tf.data.Dataset:
        store = self.store
        size, crop, channels = store.size, store.crop, store.channels

        def load(position: tf.Tensor, path: tf.Tensor):
            return position, preprocess(tf.io.read_file(path), size, crop, channels)

        def note_gap(expected: tf.Tensor, element):
            """Positions skipped by ignore_errors between the last element and this one."""
            position, image = element
            record = lambda a, b: store.record(stream[int(a):int(b)]) or np.int64(0)  # noqa: E731
            done = tf.cond(position > expected,
                           lambda: tf.numpy_function(record, [expected, position], tf.int64),
                           lambda: tf.constant(0, tf.int64))
            with tf.control_dependencies([done]):
                return position + 1, tf.identity(image)

        ds = tf.data.Dataset.from_tensor_slices((np.arange(len(stream), dtype=np.int64),
                                                 store.paths[stream].astype(str)))
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
        if needed is not None:
            ds = ds.take(needed)
        ds = ds.scan(tf.constant(0, tf.int64), note_gap)
        return ds.batch(batch_size, drop_remainder=drop_remainder)
